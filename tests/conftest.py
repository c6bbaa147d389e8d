"""Shared fixtures: the real datasets under ../shared/data (or $FER_EDGE_DATA), skipped cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    return Path(os.environ.get("FER_EDGE_DATA", REPO.parent / "shared" / "data"))


def _dataset(name: str) -> Path:
    path = shared_data_root() / name
    if not path.exists():
        pytest.skip(f"real dataset {name} not found under {shared_data_root()} (set FER_EDGE_DATA)")
    return path


@pytest.fixture(scope="session")
def ferplus_dir() -> Path:
    return _dataset("ferplus")


@pytest.fixture(scope="session")
def ckplus_dir() -> Path:
    return _dataset("ckplus48")


@pytest.fixture(scope="session")
def jaffe_dir() -> Path:
    return _dataset("jaffe")


@pytest.fixture(scope="session")
def rafdb_labels_dir() -> Path:
    return _dataset("rafdb")
