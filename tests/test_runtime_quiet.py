"""LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." (C++, fd 2) never reaches the console, while
anything else written there does; a missing source is named before any model is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fer_edge.runtime.backends.litert import quiet_runtime

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
CHATTER = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def fer_edge(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    full.update(HOME=tempfile.mkdtemp(prefix="fer-edge-home-"), **env)
    return subprocess.run([sys.executable, "-c", "from fer_edge.cli import main; main()", *args], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=300, check=False)


def test_missing_source_is_one_line_before_the_model(tmp_path: Path) -> None:
    res = fer_edge("run", "--source", "missing.mp4", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "error: source missing.mp4 not found (not a camera index, URL, folder, image or video file)"]
    # the source is checked first: a bundle that does not exist is not reached
    res = fer_edge("run", "--source", "missing.mp4", "--model", str(tmp_path / "no-bundle"), cwd=tmp_path)
    assert res.returncode == 2 and "missing.mp4" in res.stderr and "no-bundle" not in res.stderr


def test_a_run_prints_no_delegate_line(tmp_path: Path) -> None:
    res = fer_edge("run", "--source", str(SAMPLE), "--max-frames", "2", "--json", "out.jsonl", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "XNNPACK" not in res.stderr and "XNNPACK" not in res.stdout
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    res = fer_edge("run", "--source", str(SAMPLE), "--max-frames", "1", "--json", "-", cwd=tmp_path,
                   FER_EDGE_DEBUG="1")
    assert res.returncode == 0 and "XNNPACK delegate" in res.stderr  # the debug mode leaves fd 2 alone


def test_quiet_runtime_passes_on_everything_else_and_restores_fd2(capfd: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER_EDGE_DEBUG", raising=False)
    with pytest.raises(RuntimeError), quiet_runtime():
        os.write(2, CHATTER + b"ERROR: tensor 3 has no buffer\n")
        raise RuntimeError("allocate failed")
    os.write(2, CHATTER)  # fd 2 is the console again: outside the context nothing is filtered
    assert capfd.readouterr().err == "ERROR: tensor 3 has no buffer\n" + CHATTER.decode()
    with quiet_runtime():
        os.write(2, CHATTER)
    assert capfd.readouterr().err == ""
