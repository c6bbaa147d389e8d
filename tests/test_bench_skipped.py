"""A format that no backend installed here runs is benched as "skipped" with the extra to install, and does not
make the run fail; the results still validate and render."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.benchmarks import results, runner
from fer_edge.cli import cli

DEFAULT = Path(__file__).resolve().parents[1] / "fer_edge" / "assets" / "default_bundle"


def test_a_format_with_no_backend_is_skipped_not_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "available_backends", lambda: ["litert"])  # as on a device with the base install
    out = tmp_path / "bench"
    res = CliRunner().invoke(cli, ["bench", str(DEFAULT), "--formats", "onnx,openvino", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    doc = results.load(out)  # validates against the schema
    rows = {r["format"]: r for r in doc["runs"][0]["rows"]}
    assert set(rows) == {"onnx", "openvino"} and {r["status"] for r in rows.values()} == {"skipped"}
    assert rows["onnx"]["reason"] == ('no backend: format onnx needs onnxruntime or openvino, not installed here: '
                                      'pip install -e ".[onnx]" or ".[openvino]" (in the fer-edge checkout)')
    assert rows["openvino"]["reason"].endswith('pip install -e ".[openvino]" (in the fer-edge checkout)')
    assert rows["onnx"]["latency_p50_ms"] is None and "skipped (no backend)" in rows["onnx"]["accuracy_note"]
    assert runner.failures(doc) == []
    assert "skipped: no backend: format onnx" in res.output and "failed" not in res.output
    assert "**skipped**: no backend" in (out / "report.md").read_text()
    assert '<tr class="skipped' in (out / "report.html").read_text()


def test_a_format_no_backend_runs_at_all_still_fails() -> None:
    bundle = runner.load_bundle(DEFAULT)
    arts = (replace(bundle.manifest.artifacts[0], format="tensorrt"),)
    bundle = replace(bundle, manifest=replace(bundle.manifest, artifacts=arts))
    jobs, rows, _ = runner.plan(bundle, runner.BenchOptions(formats=("tensorrt",)))
    assert jobs == [] and [r["status"] for r in rows] == ["failed"]
    assert rows[0]["reason"] == "no fer-edge backend runs format 'tensorrt'"
    assert len(runner.failures(results.document([{"rows": rows, "pipeline": []}]))) == 1
