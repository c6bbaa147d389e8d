"""Hot paths timed with pytest-benchmark: preprocessing, each backend's invoke at batch 1, the face detector.

Skipped in the normal test run (pyproject's --benchmark-skip). Run and save a baseline, then compare:
    pytest tests/perf --benchmark-only --benchmark-autosave
    pytest tests/perf --benchmark-only --benchmark-compare --benchmark-compare-fail=median:15%
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from fer_edge.bundle import InputSpec, load_bundle
from fer_edge.runtime.backends import BACKENDS
from fer_edge.runtime.classifier import Classifier, quantize

RNG = np.random.default_rng(0)
GRAY48 = RNG.integers(0, 256, (48, 48), dtype=np.uint8)
COLOR96 = [RNG.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(32)]
CASES = [("litert", "tflite", "fp32"), ("litert", "tflite", "int8"), ("onnxruntime", "onnx", "fp32"),
         ("openvino", "openvino", "fp32"), ("openvino", "onnx", "fp32")]


def test_prepare_one_gray_face(benchmark: BenchmarkFixture) -> None:
    spec = InputSpec(48, 48, 1, "gray")
    out = benchmark(spec.prepare, [GRAY48])
    assert out.shape == (1, 48, 48, 1) and out.dtype == np.float32


def test_prepare_32_colour_crops_resized(benchmark: BenchmarkFixture) -> None:
    spec = InputSpec(48, 48, 1, "gray")
    out = benchmark(spec.prepare, COLOR96, True)
    assert out.shape == (32, 48, 48, 1)


@pytest.mark.parametrize(("backend", "fmt", "precision"), CASES, ids=["-".join(c) for c in CASES])
def test_invoke_batch1(benchmark: BenchmarkFixture, tiny_bundle: Path, backend: str, fmt: str, precision: str) -> None:
    cls = BACKENDS.get(backend)
    if not cls.is_available():
        pytest.skip(f"{backend} not installed")
    bundle = load_bundle(tiny_bundle)
    (art,) = bundle.find(fmt, precision)
    model = cls(bundle.verify(art), threads=1)
    x = quantize(InputSpec(48, 48).prepare([GRAY48]), np.dtype(art.input_dtype), art.input_quant)
    out = benchmark(model.invoke, x)
    assert out.reshape(1, -1).shape == (1, 8)


def test_classifier_predict_tensor_int8(benchmark: BenchmarkFixture, tiny_bundle: Path) -> None:
    clf = Classifier(tiny_bundle, backend="litert", precision="int8", threads=1)
    x = clf.input.prepare([GRAY48])
    probs = benchmark(clf.predict_tensor, x)
    assert probs.shape == (1, 8)


def test_face_detector_640x480(benchmark: BenchmarkFixture) -> None:
    if importlib.util.find_spec("fer_edge.runtime.detectors") is None:
        pytest.skip("fer_edge.runtime.detectors is not in this install")
    from fer_edge.errors import ModelError
    from fer_edge.runtime.detectors import get_detector

    try:
        det = get_detector("auto")
    except ModelError as exc:
        pytest.skip(str(exc))
    frame = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    faces = benchmark(det.detect, frame)
    assert isinstance(faces, list)
