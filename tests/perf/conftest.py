"""Fixtures of the pytest-benchmark suite (run with `pytest tests/perf --benchmark-only`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(bench_bundle: Path) -> Path:
    """The tests' tiny bundle (tests/conftest.py: tflite, onnx and openvino, fp32 + int8)."""
    return bench_bundle
