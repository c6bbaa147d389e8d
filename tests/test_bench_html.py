"""report.html renders in headless Chromium: the plots are in the DOM and the page is not blank.

Skipped, with the reason, where no Chromium is installed (CI: `apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.bundles import ferplus_or_none, ferplus_subset

from fer_edge.benchmarks.outputs import write_outputs
from fer_edge.benchmarks.runner import BenchOptions, run_bench

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if not found:
        pytest.skip("no Chromium binary on PATH (apt-get install -y chromium) to render report.html")
    return found


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bench_bundle: Path) -> Path:
    root = ferplus_or_none(request)
    data = ferplus_subset(root, tmp_path_factory.mktemp("faces")) if root else None
    opts = BenchOptions(backends=("litert",), threads=(1,), warmup=1, runs=10, rounds=2, batch_sizes=(1,))
    doc = run_bench([bench_bundle], data, opts)
    return write_outputs(doc, tmp_path_factory.mktemp("report"))["html"]


def _chromium(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_plots_are_in_the_rendered_dom(browser: str, report: Path, tmp_path: Path,
                                       request: pytest.FixtureRequest) -> None:
    res = _chromium(browser, tmp_path, "--dump-dom", report.as_uri())
    assert res.returncode == 0, res.stderr[-500:]
    dom = res.stdout
    assert "<table" in dom and "tflite" in dom
    expected = ["backbone-pareto", "accuracy-latency", "size-accuracy", "per-class-f1", "latency-distribution"]
    if ferplus_or_none(request) is None:
        expected = ["latency-distribution"]  # no labelled faces: the accuracy plots say why instead
        assert 'id="missing-accuracy-latency"' in dom
    for pid in expected:
        assert f'id="plot-{pid}"' in dom and "data:image/png;base64," in dom


def test_screenshot_is_not_blank(browser: str, report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = _chromium(browser, tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), res.stderr[-500:]
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (1600, 1200)
    not_white = np.mean(np.any(img < 200, axis=2))
    colourful = np.mean(np.ptp(img.astype(int), axis=2) > 60)  # plot markers and bars are coloured
    assert not_white > 0.02 and colourful > 0.001
