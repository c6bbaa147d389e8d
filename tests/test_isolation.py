"""No test touches the user's home or fer-edge cache: HOME and FER_EDGE_CACHE point into pytest's temp folders
(conftest), for this process and its subprocesses, and the session fails if the real cache changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import home
from helpers.datasets import make_ferplus

from fer_edge.data import load_dataset
from fer_edge.data.cache import cache_dir


def test_home_and_cache_are_temporary(tmp_path_factory: pytest.TempPathFactory, isolated_cache: Path) -> None:
    base = tmp_path_factory.getbasetemp()
    assert home.is_below(Path.home(), base) and home.is_below(cache_dir(), base)
    assert cache_dir() == isolated_cache
    assert not home.is_below(cache_dir(), home.REAL_HOME) and Path.home() != home.REAL_HOME


def test_a_subprocess_inherits_the_temporary_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    code = "from pathlib import Path; from fer_edge.data.cache import cache_dir; print(Path.home()); print(cache_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    for line in out.stdout.splitlines():
        assert home.is_below(Path(line), tmp_path_factory.getbasetemp()), line


def test_reading_a_dataset_caches_it_in_the_test_cache_only(tmp_path: Path, isolated_cache: Path) -> None:
    before = home.snapshot()
    load_dataset(make_ferplus(tmp_path / "ferplus"))
    assert [p.suffix for p in isolated_cache.iterdir()] == [".npz"]
    assert home.changes(before, home.snapshot()) == []


def test_snapshot_changes_name_new_changed_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("1")
    before = home.snapshot(tmp_path)
    (tmp_path / "a").write_text("22")
    (tmp_path / "b").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_text("")
    assert home.changes(before, home.snapshot(tmp_path)) == ["changed a", "new sub/c", "removed b"]
