"""Fixtures of the pytest-benchmark suite (run with `pytest tests/perf --benchmark-only`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.tiny_bundle import session_bundle


@pytest.fixture(scope="session")
def tiny_bundle(request: pytest.FixtureRequest) -> Path:
    return session_bundle(request)
