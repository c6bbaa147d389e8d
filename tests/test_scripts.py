"""scripts/: every measurement script starts (--help), and the comparison with the `fer` package runs one real round
on the demo clip (the `fer` side stood in by a script printing its line, when the package is not installed)."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
WITH_HELP = sorted(p for p in SCRIPTS.rglob("*.py") if p.name not in ("common.py", "fer_package.py"))


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), **kw.pop("env", {})}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=REPO, **kw)


def test_every_script_is_found() -> None:
    names = {p.relative_to(SCRIPTS).as_posix() for p in SCRIPTS.rglob("*") if p.is_file() and "__pycache__" not in
             p.parts}
    assert {"bench_serve.py", "photo_accuracy.py", "adversarial.sh", "compare/alternate.py", "compare/common.py",
            "compare/fer_edge_pipeline.py", "compare/fer_package.py"} <= names


@pytest.mark.parametrize("script", WITH_HELP, ids=lambda p: p.relative_to(SCRIPTS).as_posix())
def test_script_help(script: Path) -> None:
    res = _run([sys.executable, str(script), "--help"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage:"), res.stdout[:500]


def test_shell_script_parses() -> None:
    res = _run(["sh", "-n", str(SCRIPTS / "adversarial.sh")])
    assert res.returncode == 0, res.stderr


def test_fer_package_side_compiles(tmp_path) -> None:
    py_compile.compile(str(SCRIPTS / "compare" / "fer_package.py"), cfile=str(tmp_path / "f.pyc"), doraise=True)


def test_the_comparison_runs_one_round_on_the_clip(tmp_path) -> None:
    fer = tmp_path / "fer-python"
    if importlib.util.find_spec("fer") is not None:
        fer.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    else:  # the fer side's last line, as fer_package.py prints it
        fer.write_text("#!/bin/sh\necho 'fer: 30.0 FPS over 1 x 216 frames; found 400/573 face-frames (7 classes)'\n")
    fer.chmod(0o755)
    res = _run([sys.executable, str(SCRIPTS / "compare" / "alternate.py"), "--rounds", "1", "--fer-python", str(fer),
                "--edge-args=--no-overlap"], env={"FER_COMPARE_PASSES": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"round 1: fer ([\d.]+) FPS, fer-edge ([\d.]+) FPS, ratio ([\d.]+)", res.stdout)
    assert m and float(m.group(2)) > 0 and float(m.group(3)) == pytest.approx(float(m.group(2)) / float(m.group(1)),
                                                                               abs=0.01), res.stdout
    edge = re.search(r"fer-edge \(sequential, 2 thread\(s\) per stage.*found (\d+)/(\d+) face-frames.*"
                     r"accuracy on found ([\d.]+)%", res.stdout)
    assert edge, res.stdout
    found, total, acc = int(edge.group(1)), int(edge.group(2)), float(edge.group(3))
    assert total == 573 and 0 < found <= total and 0 < acc <= 100  # the clip's 573 labelled face-frames, scored
