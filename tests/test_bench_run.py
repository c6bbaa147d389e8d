"""fer-edge bench on a tiny real bundle and a small real FERPlus subset: every column, failed rows, records."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.bundles import ferplus_or_none, ferplus_subset

from fer_edge.benchmarks import results
from fer_edge.benchmarks.outputs import write_outputs
from fer_edge.benchmarks.render import console_table, markdown
from fer_edge.benchmarks.runner import BenchOptions, run_bench
from fer_edge.bundle import load_bundle
from fer_edge.cli import cli
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.backends import BACKENDS

OPTS = BenchOptions(backends=("litert", "onnxruntime"), threads=(1,), warmup=2, runs=20, rounds=2, min_time_s=0.0,
                    batch_sizes=(1, 8), timeout_s=120)


@pytest.fixture(scope="module")
def tiny(bench_bundle: Path) -> Path:
    return bench_bundle


@pytest.fixture(scope="module")
def subset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    root = ferplus_or_none(request)
    return ferplus_subset(root, tmp_path_factory.mktemp("ferplus-subset")) if root else None


@pytest.fixture(scope="module")
def broken(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny bundle with a corrupt ONNX file and a missing int8 TFLite file."""
    dest = tmp_path_factory.mktemp("broken") / "bundle"
    shutil.copytree(tiny, dest)
    onnx = dest / "model_fp32.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-100] + b"\0" * 100)
    (dest / "model_int8.tflite").unlink()
    return dest


@pytest.fixture(scope="module")
def doc(tiny: Path, broken: Path, subset: Path | None, tmp_path_factory: pytest.TempPathFactory) -> dict:
    missing = tmp_path_factory.mktemp("nothing") / "no-bundle"
    return run_bench([tiny, broken, missing], subset, OPTS)


def _rows(doc: dict, bundle: Path) -> list[dict]:
    return [r for r in doc["runs"][0]["rows"] if r["bundle"] == str(bundle)]


def test_every_column_present_and_sane(doc: dict, tiny: Path) -> None:
    rows = _rows(doc, tiny)
    assert [(r["format"], r["precision"], r["backend"]) for r in rows] == [
        ("tflite", "fp32", "litert"), ("tflite", "int8", "litert"), ("onnx", "fp32", "onnxruntime"),
        ("onnx", "int8", "onnxruntime")]
    manifest = load_bundle(tiny).manifest
    for r in rows:
        assert set(r) == set(results.ROW_FIELDS)
        assert r["status"] == "passed", r["reason"]
        assert r["latency_min_ms"] <= r["latency_p50_ms"] <= r["latency_p90_ms"] <= r["latency_p99_ms"]
        assert r["latency_p99_ms"] <= r["latency_max_ms"]
        assert r["latency_n"] == len(r["latency_samples"]) == OPTS.runs * OPTS.rounds
        assert len(r["round_p50_ms"]) == OPTS.rounds and r["round_cv"] >= 0
        art = next(a for a in manifest.artifacts if a.file == r["file"])
        on_disk = sum((tiny / f).stat().st_size for f in [art.file, *(c["file"] for c in art.companions)])
        assert r["size_bytes"] == on_disk and r["size_mb"] == on_disk / 1e6
        assert r["parameters"] == manifest.parameters and r["parameters_note"] == "manifest"
        # conv 48x48x16x(3x3x1) + 24x24x32x(3x3x16) + 12x12x32x(3x3x32) + dense 8x288, times 2
        assert r["flops"] == 2 * (48 * 48 * 16 * 9 + 24 * 24 * 32 * 144 + 12 * 12 * 32 * 288 + 8 * 288)
        assert "estimated" in r["flops_note"]
        assert r["best_batch"] in OPTS.batch_sizes and r["throughput_fps"] > 0
        assert set(r["throughput_by_batch"]) == {"1", "8"}
        assert r["load_ms"] > 0 and r["first_inference_ms"] > 0
        assert r["peak_rss_mb"] > r["rss_baseline_mb"] > 0 and r["rss_delta_mb"] >= 0
        assert r["backend_version"] == BACKENDS.get(r["backend"]).version()
    device = doc["runs"][0]["device"]
    assert device["cores"] >= 1 and device["cpu"] and device["python"].startswith("CPython")
    assert set(device["backends"]) >= {"litert", "onnxruntime"}


def test_accuracy_columns_match_an_independent_evaluation(doc: dict, tiny: Path, subset: Path | None) -> None:
    if subset is None:
        pytest.skip("FERPlus absent: accuracy columns need labelled data")
    from fer_edge.benchmarks.accuracy import load_faces
    from fer_edge.runtime.classifier import Classifier

    faces = load_faces(subset)
    rows = {(r["format"], r["precision"]): r for r in _rows(doc, tiny)}
    preds = {}
    for fmt, prec in rows:
        clf = Classifier(tiny, backend="litert" if fmt == "tflite" else "onnxruntime", precision=prec, format=fmt)
        preds[fmt, prec] = clf.predict(faces.images).argmax(axis=1)
    ref = preds["tflite", "fp32"]
    for key, r in rows.items():
        assert r["eval_faces"] == len(faces.labels) == 240
        assert r["accuracy"] == pytest.approx(np.mean(preds[key] == faces.labels))
        assert r["agreement"] == pytest.approx(np.mean(preds[key] == ref))
        assert r["accuracy_delta"] == pytest.approx(r["accuracy"] - rows["tflite", "fp32"]["accuracy"])
        assert r["reference"] == "tflite/fp32 on litert"
        assert 0 < r["macro_f1"] <= 1 and set(r["per_class_f1"]) == set(load_bundle(tiny).manifest.classes)
    assert rows["tflite", "fp32"]["agreement"] == 1.0 and rows["tflite", "fp32"]["accuracy_delta"] == 0.0


def test_failed_rows_say_why_and_the_rest_still_run(doc: dict, broken: Path) -> None:
    rows = {(r["format"], r["precision"]): r for r in _rows(doc, broken)}
    assert rows["tflite", "fp32"]["status"] == "passed"
    assert rows["onnx", "fp32"]["status"] == "failed" and "sha256" in rows["onnx", "fp32"]["reason"]
    assert rows["tflite", "int8"]["status"] == "failed" and "missing" in rows["tflite", "int8"]["reason"]
    assert rows["tflite", "int8"]["size_bytes"] is None
    for r in rows.values():
        if r["status"] == "failed":
            assert r["latency_p50_ms"] is None and r["accuracy"] is None
            assert r["accuracy_note"].startswith("not measured")
    nothing = [r for r in doc["runs"][0]["rows"] if r["bundle"].endswith("no-bundle")]
    assert len(nothing) == 1 and nothing[0]["status"] == "failed" and "not a fer-edge bundle" in nothing[0]["reason"]


def test_measured_processes_never_import_tensorflow(doc: dict) -> None:
    ran = [r for r in doc["runs"][0]["rows"] if r["status"] != "failed"]
    assert ran and not any("TensorFlow" in r["reason"] for r in ran)


def test_results_validate_and_merge(doc: dict) -> None:
    results.validate(doc)
    other = copy.deepcopy(doc)
    other["runs"][0].update(id="pi5-run")
    other["runs"][0]["device"]["name"] = "pi5"
    merged = results.merge([doc, other, doc])
    assert [r["device"]["name"] for r in merged["runs"]] == [doc["runs"][0]["device"]["name"], "pi5"]
    broken = copy.deepcopy(doc)
    del broken["runs"][0]["rows"][0]["latency_p50_ms"]
    with pytest.raises(FerEdgeError, match="runs/0/rows/0"):
        results.validate(broken)
    with pytest.raises(FerEdgeError, match="schema_version 99"):
        results.validate({**doc, "schema_version": 99})


def test_outputs_are_written_and_read_back(doc: dict, tmp_path: Path) -> None:
    paths = write_outputs(doc, tmp_path / "out")
    scored = any(r["accuracy"] is not None for r in doc["runs"][0]["rows"])  # labelled faces: the Pareto picture
    assert sorted(p.name for p in paths.values()) == [*(["pareto.png"] if scored else []), "report.html",
                                                       "report.md", "results.csv", "results.json"]
    assert results.load(tmp_path / "out") == json.loads(json.dumps(doc))
    lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["run", "device", "model", "bundle"]
    assert len(lines) == 1 + len(doc["runs"][0]["rows"])
    md = markdown(doc)
    assert "| model | format | prec |" in md and "Run-to-run spread" in md and "sha256" in md
    text = console_table(doc)
    assert "p50 ms" in text and "failed" in text
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('class="plot"') == (5 if scored else 1) and "data:image/png;base64," in html


def test_report_merges_devices(doc: dict, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc))
    other = copy.deepcopy(doc)
    other["runs"][0].update(id="jetson-run")
    other["runs"][0]["device"]["name"] = "orin-nano"
    b.write_text(json.dumps(other))
    res = CliRunner().invoke(cli, ["report", str(a), str(b), "--out", str(tmp_path / "compare.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "compare.html").read_text()
    assert "Devices side by side" in html and "orin-nano p50 ms" in html
    res = CliRunner().invoke(cli, ["report", str(a), "--out", str(tmp_path / "x.pdf")])
    assert res.exit_code != 0 and ".html, .md, .csv or .json" in res.output


def test_bench_cli_without_data_still_measures_latency(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", str(tiny), "--backends", "openvino", "--threads", "1", "--warmup", "1", "--runs", "5",
            "--rounds", "2", "--min-time", "0.2", "--batch-sizes", "1,4", "--out", str(out), "--quiet"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rows = results.load(out)["runs"][0]["rows"]
    assert {(r["format"], r["backend"]) for r in rows} == {("onnx", "openvino"), ("openvino", "openvino")}
    for r in rows:
        assert r["status"] == "passed", r["reason"]
        assert r["latency_p50_ms"] > 0 and r["accuracy"] is None and "no --data" in r["accuracy_note"]
        # --min-time kept each round going past --runs 5 (a 0.2 s round of this tiny model is hundreds of calls);
        # the stored samples are thinned to at most 2,000 (statistics use all), so their sum is no round's time
        assert r["latency_n"] > 5 * 2 * 10 and len(r["latency_samples"]) == min(r["latency_n"], 2000)
    res = CliRunner().invoke(cli, ["bench", str(tiny), "--backends", "tensorrt"])
    assert res.exit_code != 0 and "not one of" in res.output


def test_flip_tta_rows_score_what_the_runtime_classifier_gives(tiny: Path, subset: Path | None) -> None:
    if subset is None:
        pytest.skip("FERPlus absent: accuracy columns need labelled data")
    from dataclasses import replace

    from fer_edge.benchmarks.accuracy import load_faces
    from fer_edge.runtime.classifier import Classifier

    opts = replace(OPTS, backends=("onnxruntime",), precisions=("fp32",), flip_tta=True, batch_sizes=(1,))
    doc = run_bench([tiny], subset, opts)
    (row,) = doc["runs"][0]["rows"]
    faces = load_faces(subset)
    want = Classifier(tiny, backend="onnxruntime", precision="fp32", flip_tta=True).predict(faces.images)
    assert row["accuracy"] == pytest.approx(np.mean(want.argmax(1) == faces.labels))
    plain = Classifier(tiny, backend="onnxruntime", precision="fp32").predict(faces.images)
    assert not np.allclose(plain, want, atol=1e-4)
    assert doc["runs"][0]["settings"]["flip_tta"] is True
    assert "note: flip TTA" in console_table(doc) and "flip TTA" in markdown(doc)
