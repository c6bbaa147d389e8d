"""The backbone Pareto picture: which rows become points, the front on a synthetic set, and the PNG that
`fer-edge report` and `fer-edge bench`'s outputs write (it decodes and is not blank)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.benchmarks import pareto, results
from fer_edge.cli import cli

DEVICE = {"name": "x86", "board": "", "cpu": "test cpu", "arch": "x86_64", "cores": 2, "usable_cores": 2,
          "cpu_features": ["avx2"], "os": "Linux", "python": "CPython 3.11", "backends": {"litert": "2.3.0"},
          "load_average": [0.1, 0.1, 0.1], "load_average_end": [0.1, 0.1, 0.1]}


def _row(bundle: str, ms: float | None, acc: float | None, params: int, **kw: object) -> dict:
    fields = {"model": "m", "bundle": f"runs/bundles/{bundle}", "backbone": bundle.split("-")[0], "format": "tflite",
              "precision": "int8", "backend": "litert", "threads": 1, "file": "model_int8.tflite",
              "status": "passed", "latency_p50_ms": ms, "accuracy": acc, "parameters": params,
              "flops": 10 * params, "size_mb": params / 1e6, **kw}
    return results.empty_row(**fields)


def _run(run_id: str, created: str, rows: list[dict], flip: bool = False, load: float = 0.1) -> dict:
    return {"id": run_id, "created": created, "device": {**DEVICE, "load_average": [load, load, load]},
            "settings": {"flip_tta": flip}, "data": {"dataset": "ferplus", "split": "test", "faces": 3371},
            "notes": [], "wall_s": 1.0,
            "rows": rows, "pipeline": []}


def _doc() -> dict:
    rows = [
        _row("compact-a", 0.80, 0.83, 1_300_000),
        _row("compact-b", 1.40, 0.84, 1_300_000),      # slower and more accurate: on the front
        _row("mobilenetv2-grid", 0.25, 0.50, 2_300_000),  # fastest: on the front
        _row("resnet50-grid", 2.70, 0.34, 23_600_000, status="degraded"),  # dominated
        _row("compact-c", 0.90, 0.83, 1_300_000),      # as accurate as compact-a but slower: dominated
        _row("compact-a", 0.30, 0.90, 1_300_000, precision="fp32"),  # not the shipped precision
        _row("compact-a", 0.40, 0.83, 1_300_000, threads=2),         # not 1 thread
        _row("compact-a", 0.70, 0.83, 1_300_000, format="onnx", backend="onnxruntime"),
        _row("sepnet", 0.20, None, 400_000),                          # no accuracy: no point
    ]
    older = _run("old", "2026-11-01T00:00:00+00:00", [_row("compact-b", 0.50, 0.99, 1_300_000)])
    return results.document([_run("new", "2026-11-02T00:00:00+00:00", rows), older])


def test_the_front_is_a_plain_function_of_points() -> None:
    mk = lambda name, ms, acc: pareto.BackbonePoint(name, "b", "x86", ms, acc, 1, 1, 1.0, "passed", False, "")  # noqa: E731
    pts = [mk("a", 1.0, 0.80), mk("b", 2.0, 0.79), mk("c", 3.0, 0.85), mk("d", 0.5, 0.70), mk("e", 3.0, 0.84),
           mk("f", 1.0, 0.80)]
    # b is slower and less accurate than a; e is as slow as c and less accurate; f ties a (not strictly worse)
    assert [p.name for p in pareto.front(pts)] == ["d", "a", "f", "c"]
    assert pareto.front([]) == []
    assert [p.name for p in pareto.front([mk("only", 2.0, 0.5)])] == ["only"]


def test_points_are_the_shipped_rows_one_per_bundle_latest_run() -> None:
    points = pareto.backbone_points(_doc())
    assert [p.name for p in points] == ["mobilenetv2-grid", "compact-a", "compact-c", "compact-b", "resnet50-grid"]
    a = next(p for p in points if p.name == "compact-a")
    assert (a.ms, a.accuracy, a.parameters) == (0.80, 0.83, 1_300_000)  # the int8 TFLite x1 row, not fp32/onnx/x2
    b = next(p for p in points if p.name == "compact-b")
    assert b.ms == 1.40 and b.created.startswith("2026-11-02")  # the newer run wins over the older one
    assert [p.name for p in pareto.front(points)] == ["mobilenetv2-grid", "compact-a", "compact-b"]


def test_a_flip_tta_run_is_its_own_point() -> None:
    doc = _doc()
    doc["runs"].append(_run("flip", "2026-11-03T00:00:00+00:00", [_row("compact-a", 1.6, 0.835, 1_300_000)], True))
    points = pareto.backbone_points(doc)
    flips = [p for p in points if p.flip_tta]
    assert [(p.name, p.ms) for p in flips] == [("compact-a", 1.6)]
    assert len(points) == 6


def test_a_bundle_benched_twice_keeps_the_quieter_run() -> None:
    doc = _doc()
    doc["runs"].append(_run("busy", "2026-11-05T00:00:00+00:00", [_row("compact-a", 2.5, 0.83, 1_300_000)],
                            load=3.0))
    doc["runs"].append(_run("quiet", "2026-11-04T00:00:00+00:00", [_row("compact-c", 0.6, 0.83, 1_300_000)],
                            load=0.05))
    points = {p.name: p for p in pareto.backbone_points(doc)}
    assert points["compact-a"].run_id == "new" and points["compact-a"].ms == 0.80  # the later run was busier
    assert points["compact-c"].run_id == "quiet" and points["compact-c"].ms == 0.6  # quieter beats newer


def test_bundles_whose_folders_share_a_name_stay_two_points() -> None:
    """`fer-edge convert RUN` writes RUN/bundle: two such bundles are two points, named by what tells them apart."""
    rows = [{**_row("compact", 0.8, 0.83, 1_300_000), "bundle": "runs/compact/bundle"},
            {**_row("sepnet", 0.5, 0.80, 400_000), "bundle": "runs/sepnet/bundle"},
            _row("tiny", 0.4, 0.70, 400_000)]
    points = pareto.backbone_points(results.document([_run("r", "2026-11-02T00:00:00+00:00", rows)]))
    assert [(p.name, p.backbone, p.ms) for p in points] == [
        ("tiny", "tiny", 0.4), ("sepnet/bundle", "sepnet", 0.5), ("compact/bundle", "compact", 0.8)]
    assert pareto.bundle_names(["a/b/bundle", "c/b/bundle", "d"]) == {
        "a/b/bundle": "a/b/bundle", "c/b/bundle": "c/b/bundle", "d": "d"}


def _decoded(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} does not decode as an image"
    return img


def test_report_writes_the_picture_beside_the_report(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    src = tmp_path / "a.json"
    src.write_text(json.dumps(_doc()))
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / "compare.html")])
    assert res.exit_code == 0, res.output
    png = tmp_path / "compare-pareto.png"
    assert f"Pareto picture -> {png}" in res.output
    img = _decoded(png)
    assert img.shape[0] > 300 and img.shape[1] > 500 and img.std() > 10  # drawn, not blank
    assert 'id="plot-backbone-pareto"' in (tmp_path / "compare.html").read_text()
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temp left
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / "merged.csv")])
    assert res.exit_code == 0 and not (tmp_path / "merged-pareto.png").exists()


def test_no_shipped_row_means_no_picture_and_a_reason(tmp_path: Path) -> None:
    doc = results.document([_run("r", "2026-11-02T00:00:00+00:00", [_row("compact-a", 0.8, None, 1)])])
    src = tmp_path / "a.json"
    src.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / "compare.md")])
    assert res.exit_code == 0, res.output
    assert "no Pareto picture: no int8 TFLite row" in res.output
    assert not (tmp_path / "compare-pareto.png").exists()


def test_bench_outputs_include_the_picture(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from fer_edge.benchmarks.outputs import write_outputs

    paths = write_outputs(_doc(), tmp_path / "out")
    assert paths["png"] == tmp_path / "out" / "pareto.png"
    assert _decoded(paths["png"]).std() > 10


def test_names_from_a_results_file_are_drawn_as_text(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    doc = _doc()
    doc["runs"][0]["rows"][0]["bundle"] = "runs/bundles/$\\frac{broken$"  # would be a mathtext error
    doc["runs"][0]["device"]["name"] = "$^"
    picture, why = pareto.write_png(doc, tmp_path / "p.png")
    assert picture and not why and _decoded(picture).std() > 10


def test_report_html_draws_dollar_names_as_text(tmp_path: Path) -> None:
    """Every plot of report.html, not only the Pareto picture: a '$' in a name is not matplotlib math."""
    pytest.importorskip("matplotlib")
    doc = _doc()
    for r in doc["runs"][0]["rows"]:
        r["model"], r["per_class_f1"] = "$\\frac{x$", {"$a": 0.5, "b": 0.7}
    src = tmp_path / "a.json"
    src.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / "c.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "c.html").read_text()
    assert (tmp_path / "c-pareto.png").is_file() and 'id="plot-accuracy-latency"' in html
    assert "could not be drawn" not in html  # every plot drew, the per-class one with its '$a' too


def test_the_start_load_is_a_finite_number_or_none() -> None:
    load = lambda v: pareto.start_load({"load_average": v})  # noqa: E731
    assert (load([2.5, 1.0, 0.5]), load(2.5), load(3)) == (2.5, 2.5, 3.0)
    assert [load(v) for v in (None, [], ["busy"], [float("nan")], float("inf"), "2.5", True, {"1": 2})] == [None] * 8
    assert pareto.start_load({}) is None
    doc = _doc()  # straight from a results file nobody validated (scripts/backbone_table.py reads them so)
    doc["runs"][0]["device"]["load_average"] = 2.5
    doc["runs"][1]["device"]["load_average"] = "high"
    points = {p.name: p for p in pareto.backbone_points(doc)}
    assert points["compact-a"].load == 2.5 and points["compact-b"].run_id == "new"  # a known load beats none


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_a_load_average_that_is_no_list_is_refused_with_one_line(tmp_path: Path, suffix: str) -> None:
    doc = _doc()
    doc["runs"][0]["device"]["load_average"] = 2.5
    src = tmp_path / "results.json"
    src.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / f"o{suffix}")])
    assert res.exit_code != 0 and not isinstance(res.exception, TypeError), res.output
    assert "runs/0/device/load_average" in res.output and "Traceback" not in res.output
    assert not list(tmp_path.glob("o*"))  # refused before anything is written


def test_a_picture_that_cannot_be_drawn_does_not_lose_the_report(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")

    def broken(*a: object, **k: object) -> None:
        raise TypeError("'float' object is not subscriptable")

    monkeypatch.setattr(pareto, "figure", broken)
    src = tmp_path / "a.json"
    src.write_text(json.dumps(_doc()))
    for suffix in (".html", ".md"):
        (tmp_path / "c-pareto.png").write_bytes(b"an earlier run's picture")  # must not stand beside the new report
        res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / f"c{suffix}")])
        assert res.exit_code == 0, res.output
        assert "no Pareto picture: it could not be drawn (TypeError: 'float' object is not subscriptable)" in res.output
        assert (tmp_path / f"c{suffix}").stat().st_size > 1000 and not (tmp_path / "c-pareto.png").exists()
    html = (tmp_path / "c.html").read_text()
    assert 'id="plot-accuracy-latency"' in html and "could not be drawn (TypeError" in html  # the other plots stay


def _two_devices() -> dict:
    doc = _doc()
    pi = _run("pi", "2026-11-01T00:00:00+00:00", [_row("compact-a", 6.0, 0.83, 1_300_000),
                                                   _row("mobilenetv2-grid", 2.0, 0.50, 2_300_000)])
    pi["device"]["name"] = "pi5"
    doc["runs"].append(pi)
    return doc


def test_the_same_bundle_on_two_devices_is_two_points_each_on_its_own_front() -> None:
    points = pareto.backbone_points(_two_devices())
    assert sorted((p.device, p.ms) for p in points if p.name == "compact-a") == [("pi5", 6.0), ("x86", 0.80)]
    assert len(points) == 7
    # the pi's points are slower than every x86 one, yet the pi has its own front: latencies of two machines
    assert [(p.device, p.name) for p in pareto.front(points)] == [
        ("x86", "mobilenetv2-grid"), ("x86", "compact-a"), ("x86", "compact-b"), ("pi5", "mobilenetv2-grid"),
        ("pi5", "compact-a")]


def test_the_picture_tells_the_devices_apart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    points = pareto.backbone_points(_two_devices())
    fig = pareto.figure(points)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"x86", "pi5", "Pareto front (x86)", "Pareto front (pi5)"} <= set(legend)
    markers = {tuple(c.get_paths()[0].vertices.round(3).ravel()) for c in ax.collections if len(c.get_offsets())}
    assert len(markers) == 2  # one marker shape per device
    key = next(t.get_text() for t in ax.texts if "on the front" in t.get_text())
    assert "compact-a on pi5" in key and "compact-a on x86" in key
    one = pareto.figure(pareto.backbone_points(_doc())).axes[0]  # one device: as before, no device in the key
    assert [t.get_text() for t in one.get_legend().get_texts()] == ["Pareto front"]
    src = tmp_path / "both.json"
    src.write_text(json.dumps(_two_devices()))
    res = CliRunner().invoke(cli, ["report", str(src), "--out", str(tmp_path / "c.html")])
    assert res.exit_code == 0, res.output
    assert _decoded(tmp_path / "c-pareto.png").std() > 10
