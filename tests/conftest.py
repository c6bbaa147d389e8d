"""Shared fixtures: a temporary HOME and fer-edge cache for the session and for every test (the user's are never
touched: the session fails if the real cache changed), the tiny bundles (helpers/bundles.py), and the real
datasets under ../shared/data (or $FER_EDGE_DATA), skipped cleanly when absent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import home

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
_REAL_CACHE_BEFORE = pytest.StashKey[home.Snapshot]()
_SESSION_HOME = pytest.StashKey[Path]()


def _default_stop_signals() -> None:
    """Children start with the stop signals at their defaults, as a service manager or a terminal starts them. A
    test run started under ``nohup`` (SIGHUP ignored) or as a background job of a script (``cmd &``: SIGINT
    ignored) would otherwise pass those ignored signals down, and `fer-edge run` rightly keeps an inherited
    ignore, so the tests that stop it by SIGINT or SIGHUP would wait in vain."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if name == "SIGINT" else signal.SIG_DFL)


def pytest_configure(config: pytest.Config) -> None:
    """Before anything is imported or collected: the stop signals at their defaults (see above); HOME, the
    fer-edge cache and matplotlib's config in a temp folder (subprocesses inherit them), and a snapshot of the
    user's real cache to compare at the end."""
    _default_stop_signals()
    config.stash[_REAL_CACHE_BEFORE] = home.snapshot()
    session_home = Path(tempfile.mkdtemp(prefix="fer-edge-tests-home-"))
    config.stash[_SESSION_HOME] = session_home
    os.environ["HOME"] = str(session_home)
    os.environ["FER_EDGE_CACHE"] = str(session_home / ".cache" / "fer-edge")
    os.environ["MPLCONFIGDIR"] = str(session_home / ".config" / "matplotlib")  # one font cache per session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when any test wrote into the user's real ~/.cache/fer-edge."""
    before = session.config.stash.get(_REAL_CACHE_BEFORE, None)
    if before is None:
        return
    changed = home.changes(before, home.snapshot())
    if changed:
        shared = os.environ.get("FER_EDGE_TESTS_SHARED_CACHE") == "1"  # other processes use that cache meanwhile
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            why = ("FER_EDGE_TESTS_SHARED_CACHE=1: not failing" if shared else
                   "set FER_EDGE_TESTS_SHARED_CACHE=1 where another process may write there")
            reporter.write_line(f"the user's cache {home.REAL_CACHE} changed during the tests: "
                                f"{', '.join(changed[:10])} ({why})", red=True)
        if not shared:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_SESSION_HOME, None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty HOME and dataset cache (never the user's ~ or ~/.cache/fer-edge)."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FER_EDGE_CACHE", str(path))
    return path


def _tiny_bundle(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Path:
    """Build a ``kind`` bundle with the tests' one builder (helpers/bundles.py, the real converter) in a subprocess."""
    out = tmp_path_factory.mktemp("bundle") / kind
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, str(REPO / "tests" / "helpers" / "bundles.py"), str(out), kind],
                         timeout=600, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"building the tiny {kind} bundle failed: {res.stderr[-3000:]}"
    return out


@pytest.fixture(scope="session")
def dev_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained bundle (tflite fp32 + int8), built once per test session."""
    return _tiny_bundle(tmp_path_factory, "runtime")


@pytest.fixture(scope="session")
def bench_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny briefly-trained bundle (tflite, onnx, openvino; fp32 + int8), built once per test session."""
    return _tiny_bundle(tmp_path_factory, "bench")


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
