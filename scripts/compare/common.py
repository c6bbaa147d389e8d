"""The clip, its labels, and one scoring rule shared by both sides of the comparison.

The demo clip by default; ``FER_COMPARE_CLIP=PATH.mp4`` for another, with its labels in PATH.csv beside it (one
row per face per frame: ``frame,face,x,y,w,h,file,label``, as scripts/jaffe_clip.py writes them).
"""

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from fer_edge.runtime.geometry import iou  # noqa: E402

SAMPLE = REPO / "fer_edge" / "assets" / "sample"
PASSES = int(os.environ.get("FER_COMPARE_PASSES", "1"))  # passes over the clip per timing
CLIP = os.environ.get("FER_COMPARE_CLIP", "")


@dataclass(frozen=True)
class Labelled:
    """One labelled face in one frame; ``face`` names the face across the frames it is in."""

    frame: int
    face: str
    box: tuple[int, int, int, int]
    label: str


def read_frames(path: Path) -> list:
    """Every decoded frame of a video."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def _box(row: dict) -> tuple[int, int, int, int]:
    return tuple(int(row[k]) for k in "xywh")


def load_clip() -> tuple[list, list[Labelled], str]:
    """Decoded frames, the labelled faces per frame, and the clip's name (the demo clip unless FER_COMPARE_CLIP)."""
    if not CLIP:
        with open(SAMPLE / "faces.csv", newline="") as fh:
            truth = [Labelled(i, f"{row['scene']}:{row['file']}", _box(row), row["label"])
                     for row in csv.DictReader(fh)
                     for i in range(int(row["first_frame"]), int(row["last_frame"]) + 1)]
        return read_frames(SAMPLE / "sample.mp4"), truth, "demo"
    path = Path(CLIP)
    with path.with_suffix(".csv").open(newline="") as fh:
        truth = [Labelled(int(row["frame"]), row["face"], _box(row), row["label"]) for row in csv.DictReader(fh)]
    return read_frames(path), truth, path.stem


def first_sightings(truth: list[Labelled]) -> list[Labelled]:
    """Each face in the first frame it is in (for scoring a model alone on the known boxes)."""
    seen: dict[str, Labelled] = {}
    for t in truth:
        if t.face not in seen or t.frame < seen[t.face].frame:
            seen[t.face] = t
    return list(seen.values())


def score(found: dict[int, list[tuple[tuple, str]]], truth: list[Labelled]) -> tuple[int, int, int]:
    """(face-frames, found, right) over the 7 classes both models have (contempt excluded): a labelled face counts
    as found when a detection overlaps it with IoU >= 0.3, and as right when that detection's label matches."""
    faces = hit = right = 0
    for t in truth:
        if t.label == "contempt":
            continue
        faces += 1
        best = max(found.get(t.frame, []), key=lambda d: iou(d[0], t.box), default=None)
        if best is None or iou(best[0], t.box) < 0.3:
            continue
        hit += 1
        right += best[1] == t.label
    return faces, hit, right
