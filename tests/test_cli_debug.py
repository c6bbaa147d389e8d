"""FER_EDGE_DEBUG=1 shows the traceback of every failure, a user error (FerEdgeError) included; without it the
same failure is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def fer_edge(*args: str, cwd: Path, debug: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    env.update(HOME=tempfile.mkdtemp(prefix="fer-edge-home-"), **({"FER_EDGE_DEBUG": "1"} if debug else {}))
    return subprocess.run([sys.executable, "-c", "from fer_edge.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(("args", "error"), [
    (["run", "--source", "missing.mp4"], "fer_edge.errors.SourceError: source missing.mp4 not found"),
    (["bundle", "inspect", "no-bundle"], "fer_edge.errors.ModelError: no-bundle"),
])
def test_debug_shows_the_traceback_of_a_user_error(args: list[str], error: str, tmp_path: Path) -> None:
    plain = fer_edge(*args, cwd=tmp_path, debug=False)
    assert plain.returncode == 2 and len(plain.stderr.splitlines()) == 1 and "Traceback" not in plain.stderr
    debug = fer_edge(*args, cwd=tmp_path, debug=True)
    lines = debug.stderr.strip().splitlines()
    assert debug.returncode != 0 and lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith(error)
    assert lines[-1].split(": ", 1)[1] == plain.stderr.strip().removeprefix("error: ")  # the same message
