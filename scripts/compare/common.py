"""The demo clip, its FERPlus labels, and one scoring rule shared by both sides of the comparison."""

import csv
import os
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from fer_edge.runtime.geometry import iou  # noqa: E402

SAMPLE = REPO / "fer_edge" / "assets" / "sample"
PASSES = int(os.environ.get("FER_COMPARE_PASSES", "1"))  # passes over the clip per timing (the clip is 216 frames)


def load_sample() -> tuple[list, list[dict]]:
    """Decoded frames of sample.mp4 and the rows of faces.csv (box, frames, FERPlus label per face)."""
    cap = cv2.VideoCapture(str(SAMPLE / "sample.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    return frames, list(csv.DictReader(open(SAMPLE / "faces.csv")))


def truth_box(row: dict) -> tuple[int, int, int, int]:
    return tuple(int(row[k]) for k in "xywh")


def score(found: dict[int, list[tuple[tuple, str]]], truth: list[dict]) -> tuple[int, int, int]:
    """(face-frames, found, right) over the 7 classes both models have (contempt excluded): a labelled face counts
    as found when a detection overlaps it with IoU >= 0.3, and as right when that detection's label matches."""
    faces = hit = right = 0
    for row in truth:
        if row["label"] == "contempt":
            continue
        box = truth_box(row)
        for i in range(int(row["first_frame"]), int(row["last_frame"]) + 1):
            faces += 1
            best = max(found[i], key=lambda d: iou(d[0], box), default=None)
            if best is None or iou(best[0], box) < 0.3:
                continue
            hit += 1
            right += best[1] == row["label"]
    return faces, hit, right
