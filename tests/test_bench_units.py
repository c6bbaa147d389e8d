"""Benchmark building blocks: latency statistics, Pareto front, scores, class mapping, CPU info, pipeline path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.bundles import ferplus_faces, ferplus_or_none

from fer_edge.benchmarks import accuracy as acc
from fer_edge.benchmarks.latency import percentile, spread, summarize, thin, time_round
from fer_edge.benchmarks.results import empty_row, pareto_front
from fer_edge.benchmarks.runner import BenchOptions, run_bench
from fer_edge.benchmarks.sysinfo import cpu_features, cpu_model
from fer_edge.bundle import InputSpec, Manifest
from fer_edge.errors import FerEdgeError
from fer_edge.labels import EMOTIONS

PI5_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
Model\t: Raspberry Pi 5 Model B Rev 1.0
"""
X86_CPUINFO = "model name\t: Intel(R) Core(TM) i7-1165G7\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n"


def test_percentiles_are_taken_over_sorted_samples() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0, 2.5, 1.5, 3.5, 4.5]
    s = summarize(samples)
    for q, got in ((50, s.p50), (90, s.p90), (99, s.p99)):
        assert got == pytest.approx(np.percentile(samples, q))
    assert s.min == 1.0 and s.max == 100.0 and s.n == 10 and s.p50 < s.p90 < s.p99
    assert percentile(np.array([7.0]), 99) == 7.0
    with pytest.raises(ValueError):
        percentile(np.array([]), 50)


def test_rounds_last_long_enough_and_samples_are_thinned() -> None:
    import time

    t0 = time.perf_counter()
    calls = time_round(lambda x: time.sleep(0.002), [np.zeros(1)], min_calls=3, min_time_s=0.05)
    wall_ms = (time.perf_counter() - t0) * 1000
    # the round lasts min_time of wall time (calls plus loop overhead), so the calls alone add up to a bit less
    assert len(calls) >= 3 and wall_ms >= 50 and sum(calls) >= 40 and all(c >= 2 for c in calls)
    assert len(time_round(lambda x: None, [np.zeros(1)], min_calls=7, min_time_s=0.0)) == 7
    assert thin(list(range(10)), 4) == [0, 3, 6, 9] and thin([1.0, 2.0], 4) == [1.0, 2.0]


def test_spread_of_round_medians() -> None:
    assert spread([1.0, 1.0, 1.0]) == {"cv": 0.0, "range": 0.0}
    s = spread([1.0, 1.1, 0.9])
    assert s["cv"] == pytest.approx(0.1) and s["range"] == pytest.approx(0.2)
    assert spread([1.0]) == {"cv": None, "range": None}


def test_pareto_front() -> None:
    # (latency, accuracy): b is dominated by a (slower, less accurate); d ties a and is not strictly better.
    pts = [(1.0, 0.80), (2.0, 0.79), (3.0, 0.85), (1.0, 0.80), (0.5, 0.70)]
    assert pareto_front(pts) == [True, False, True, True, True]


def test_runs_of_one_device_form_one_series_for_the_plots() -> None:
    """Bundles benched one at a time on the same device are compared with each other (one series, one Pareto
    front); another device is its own series. Rows without accuracy or latency are left out."""
    from fer_edge.benchmarks.plots import series

    def run(device: str, model: str, points: list[tuple[float | None, float | None]]) -> dict:
        return {"device": {"name": device}, "rows": [{"model": model, "accuracy": a, "latency_p50_ms": t}
                                                      for t, a in points]}

    doc = {"runs": [run("x86", "compact", [(0.8, 0.80), (3.5, 0.81)]), run("x86", "resnet50", [(4.0, 0.39)]),
                    run("pi5", "compact", [(2.0, 0.80), (None, 0.80)]), run("pi5", "mnv2", [(1.0, None)])]}
    groups = series(doc, "latency_p50_ms")
    assert list(groups) == ["x86", "pi5"]
    assert [r["model"] for _, r in groups["x86"]] == ["compact", "compact", "resnet50"]
    assert len(groups["pi5"]) == 1
    x86 = [(r["latency_p50_ms"], r["accuracy"]) for _, r in groups["x86"]]
    assert pareto_front(x86) == [True, True, False]  # resnet50 is dominated by the compact model on x86


def test_scores_by_hand() -> None:
    classes = ("a", "b", "c")
    s = acc.scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), classes)
    assert s["accuracy"] == 0.75
    assert s["per_class_f1"]["a"] == pytest.approx(2 / 3) and s["per_class_f1"]["b"] == pytest.approx(0.8)
    assert s["per_class_f1"]["c"] is None  # no support: left out of macro-F1
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert acc.agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75


def test_classes_are_mapped_by_name_onto_the_manifest() -> None:
    spec = InputSpec(48, 48)
    m = Manifest(name="m", backbone="b", classes=("Happy", "angry", "neutral", "sad", "surprise", "fear", "disgust"),
                 input=spec)
    labels = np.array([EMOTIONS.index(c) for c in ("happiness", "contempt", "neutral", "anger")] + [-1])
    y, note = acc.targets(labels, m)
    assert y.tolist() == [0, -1, 2, 1, -1]
    assert "1 faces" in note and "contempt" in note


def test_cpu_model_and_features_from_cpuinfo() -> None:
    assert cpu_model(PI5_CPUINFO) == "Raspberry Pi 5 Model B Rev 1.0"
    assert cpu_features(PI5_CPUINFO) == ["dotprod", "fp16", "neon"]
    assert cpu_model(X86_CPUINFO).startswith("Intel(R) Core")
    assert cpu_features(X86_CPUINFO) == ["avx", "avx2", "avx512", "avx512_vnni", "fma", "sse4_2"]


def test_rows_reject_unknown_columns_and_bad_options() -> None:
    with pytest.raises(KeyError):
        empty_row(latency_p42_ms=1.0)
    with pytest.raises(FerEdgeError, match="--threads"):
        BenchOptions(threads=(0,)).check()
    with pytest.raises(FerEdgeError, match="unknown backend"):
        BenchOptions(backends=("tensorrt",)).check()


def test_pipeline_numbers_beside_model_only(request: pytest.FixtureRequest, tmp_path: Path, bench_bundle: Path) -> None:
    tiny = bench_bundle
    faces, _ = ferplus_faces(ferplus_or_none(request), "test", 2)
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(12):
        frame = np.full((240, 320, 3), 128, np.uint8)
        frame[60:180, 100:220] = cv2.resize(faces[i % 2, ..., 0], (120, 120))[..., None]
        w.write(frame)
    w.release()
    opts = BenchOptions(backends=("litert",), precisions=("int8",), threads=(1,), warmup=1, runs=5, rounds=1,
                        batch_sizes=(1,), pipeline=str(video), pipeline_frames=12)
    doc = run_bench([tiny], None, opts)
    (entry,) = doc["runs"][0]["pipeline"]
    row = doc["runs"][0]["rows"][0]
    assert entry["model_only_p50_ms"] == row["latency_p50_ms"] and entry["precision"] == "int8"
    if importlib.util.find_spec("fer_edge.runtime.pipeline") is None:
        assert entry["status"] == "failed" and "not available" in entry["reason"]
    else:
        assert entry["status"] == "passed", entry["reason"]
        assert entry["frames"] > 0 and entry["fps"] > 0 and "classify" in json.dumps(entry["stages_ms"])
        assert entry["tensorflow_imported"] is False
