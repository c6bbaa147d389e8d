"""The original CK+ tree: cohn-kanade-images/S005/001/*.png + Emotion/S005/001/*_emotion.txt.

Only sequences with an emotion file are labelled (codes 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear,
5 happy, 6 sadness, 7 surprise). The label goes to the last ``last_frames`` frames (the apex); with
``neutral_first`` the first frame of each labelled sequence is added as neutral. Faces are cropped to 96x96 gray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.data.common import build, image_names, subdirs
from fer_edge.data.faces import FaceCropper, load_detector, photo_salt
from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_gray
from fer_edge.data.registry import DATASETS
from fer_edge.data.textio import read_text
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import index

IMAGES = "cohn-kanade-images"
EMOTION_DIRS = ("Emotion", "Emotion_labels/Emotion")
CODES = ("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
SIZE = 96
FALLBACK = {"fallback_scale": 0.62, "fallback_centre": (0.5, 0.5)}


def emotion_dir(path: Path) -> Path | None:
    return next((path / d for d in EMOTION_DIRS if (path / d).is_dir()), None)


def read_code(path: Path) -> int:
    """The emotion code in one ``*_emotion.txt`` (e.g. ``   3.0000000e+00``); DataError naming file and line."""
    lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
    try:
        value = float(lines[0]) if len(lines) == 1 else float("nan")
    except ValueError:
        value = float("nan")
    if not value.is_integer() or not 0 <= value < len(CODES):
        raise DataError(f"{path}:1: expected one emotion code 0..7, got {' | '.join(lines)[:60]!r}")
    return int(value)


def sequences(path: Path) -> list[tuple[str, str, int]]:
    """(subject, sequence, code) of every labelled sequence."""
    emo = emotion_dir(path)
    found = []
    for subject in subdirs(emo) if emo else []:
        for seq in subdirs(emo / subject):
            txt = sorted(p for p in (emo / subject / seq).glob("*_emotion.txt"))
            if txt:
                found.append((subject, seq, read_code(txt[-1])))
    return found


@DATASETS.register("ckplus")
class CkPlusLayout:
    version = 1
    priority = 10
    description = "CK+ original tree: cohn-kanade-images/S005/001/*.png + Emotion/S005/001/*_emotion.txt"

    def __init__(self, last_frames: int = 3, neutral_first: bool = False) -> None:
        self.last_frames = last_frames
        self.neutral_first = neutral_first

    def detect(self, path: Path) -> bool:
        return (path / IMAGES).is_dir() and emotion_dir(path) is not None

    def cache_salt(self) -> str:
        return f"last{self.last_frames}-neutral{int(self.neutral_first)}-{photo_salt(load_detector()[0])}"

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        files, labels, subjects, problems = [], [], [], []
        for subject, seq, code in sequences(path):
            frames = image_names(path / IMAGES / subject / seq)
            if not frames:
                problems.append(f"{IMAGES}/{subject}/{seq}: labelled but has no frames")
                continue
            picked = [(f, code) for f in frames[-self.last_frames:]]
            if self.neutral_first and len(frames) > self.last_frames:
                picked.insert(0, (frames[0], 0))
            for frame, c in picked:
                files.append(f"{IMAGES}/{subject}/{seq}/{frame}")
                labels.append(index(CODES[c]))
                subjects.append(subject)
        log = ImageReadLog(strict=strict)
        crop = FaceCropper.auto(SIZE, **FALLBACK)

        def read_one(p: Path) -> np.ndarray | None:
            img = read_gray(p, log)
            return None if img is None else crop(img, p.name)

        images, kept = read_all([path / f for f in files], read_one, progress)
        classes = CODES if self.neutral_first or index("neutral") in labels else CODES[1:]
        return build(self.name, path, images, np.asarray(labels)[kept], classes,
                     [*problems, *log.problems(), *crop.problems()],
                     subjects=np.asarray(subjects)[kept], files=np.asarray(files)[kept])
