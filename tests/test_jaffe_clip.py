"""scripts/jaffe_clip.py: a labelled 640x480 clip of 2-3 JAFFE faces, written outside the repository only."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import cv2
import pytest
from helpers.datasets import make_jaffe

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("jaffe_clip", REPO / "scripts" / "jaffe_clip.py")
jaffe_clip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jaffe_clip)


def test_clip_frames_and_labels_agree(tmp_path: Path) -> None:
    photos = make_jaffe(tmp_path / "jaffe")
    out = tmp_path / "clips" / "j.mp4"
    assert jaffe_clip.main([str(photos), "--out", str(out), "--segments", "4", "--hold", "3"]) == 0
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert len(frames) == 12 and frames[0].shape == (480, 640, 3)
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    per_frame = [sum(int(r["frame"]) == i for r in rows) for i in range(12)]
    assert per_frame == [3] * 6 + [2] * 3 + [3] * 3  # the third face is away in every third segment
    for r in rows:
        x, y, w, h = (int(r[k]) for k in "xywh")
        assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 and 100 <= w == h <= 150
        assert r["label"] == jaffe_clip.parse_name(r["file"])[1]
        # the box holds the photo's pixels, not the flat background
        assert cv2.meanStdDev(frames[int(r["frame"])][y:y + h, x:x + w])[1].max() > 5
    for face in {r["face"] for r in rows}:  # one photo per face for its whole segment; expressions change
        assert len({r["file"] for r in rows if r["face"] == face}) == 1
    slot0 = [r["label"] for r in rows if r["face"].endswith(":0") and r["frame"] in ("0", "3", "6", "9")]
    assert len(set(slot0)) == 4
    again = tmp_path / "again" / "j.mp4"
    jaffe_clip.main([str(photos), "--out", str(again), "--segments", "4", "--hold", "3"])
    assert again.with_suffix(".csv").read_text() == out.with_suffix(".csv").read_text()  # reproducible


def test_clip_refuses_the_repository_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos = make_jaffe(tmp_path / "jaffe")
    assert jaffe_clip.main([str(photos), "--out", str(REPO / "j.mp4")]) == 2
    assert "inside the repository" in capsys.readouterr().err and not (REPO / "j.mp4").exists()
    assert jaffe_clip.main([str(tmp_path / "none"), "--out", str(tmp_path / "j.mp4")]) == 2
    assert jaffe_clip.main([str(photos), "--out", str(tmp_path / "j.avi")]) == 2
    two = make_jaffe(tmp_path / "two", subjects=("KA", "KL"))
    assert jaffe_clip.main([str(two), "--out", str(tmp_path / "j.mp4")]) == 2
    assert "need 3 subjects" in capsys.readouterr().err
