"""scripts/compare/ on another clip (FER_COMPARE_CLIP with per-frame labels): the A/B against the detector code
before its pre/post cut, the per-stage timing, and the JSON each writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.datasets import make_jaffe

from fer_edge.runtime.detectors import DETECTORS

REPO = Path(__file__).resolve().parents[1]
COMPARE = REPO / "scripts" / "compare"
pytestmark = pytest.mark.skipif(not DETECTORS.get("blazeface").is_available(), reason="BlazeFace model not found")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("clip")
    out = tmp / "j.mp4"
    res = _run([sys.executable, str(REPO / "scripts" / "jaffe_clip.py"), str(make_jaffe(tmp / "jaffe")), "--out",
                str(out), "--segments", "2", "--hold", "4"])
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def test_alternate_versus_the_reference_detector_on_another_clip(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    res = _run([sys.executable, str(COMPARE / "alternate.py"), "--rounds", "1", "--versus", "reference", "--out",
                str(out)], FER_COMPARE_CLIP=str(clip), FER_COMPARE_PASSES="1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"round 1: reference [\d.]+ FPS, fer-edge [\d.]+ FPS", res.stdout), res.stdout
    lines = re.findall(r"found (\d+)/(\d+) face-frames.*; clip j$", res.stdout, re.MULTILINE)
    labelled = len(clip.with_suffix(".csv").read_text().splitlines()) - 1
    assert len(lines) == 2 and {int(total) for _, total in lines} == {labelled} == {24}  # 2 segments x 4 frames x 3
    assert lines[0][0] == lines[1][0]  # the same detections with either detector code
    rec = json.loads(out.read_text())
    assert rec["clip"] == "j" and rec["versus"] == "reference" and len(rec["reference_fps"]) == 1
    assert rec["ratio_median"] == pytest.approx(rec["fer_edge_fps"][0] / rec["reference_fps"][0], abs=1e-3)


def test_detector_stages_and_ab_write_their_records(clip: Path, tmp_path: Path) -> None:
    stages = tmp_path / "stages.json"
    res = _run([sys.executable, str(COMPARE / "detector_stages.py"), "--rounds", "2", "--clip", str(clip), "--out",
                str(stages)])
    assert res.returncode == 0, res.stderr[-3000:]
    rec = json.loads(stages.read_text())
    assert rec["frames"] == 8 and rec["frames_differing"] == 0
    for side in ("before", "after"):
        assert set(rec["median_ms"][side]) == {"fill", "invoke", "read", "decode", "total"}
        assert all(v > 0 for v in rec["median_ms"][side].values())
    ab = tmp_path / "ab.json"
    res = _run([sys.executable, str(COMPARE / "detector_ab.py"), "--pairs", "2", "--out", str(ab)],
               FER_COMPARE_CLIP=str(clip))
    assert res.returncode == 0, res.stderr[-3000:]
    rec = json.loads(ab.read_text())
    assert rec["clip"] == "j" and len(rec["fps"]["before"]) == len(rec["fps"]["after"]) == 2
