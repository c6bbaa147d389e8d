"""FER2013 as image folders (the common Kaggle download): train/ test/ [val/|validation/] /<class>/*.png|jpg.

Class folders are FER2013's seven names (angry, disgust, fear, happy, neutral, sad, surprise); faces are
48x48 gray.
"""

from __future__ import annotations

from pathlib import Path

from fer_edge.data.common import subdirs
from fer_edge.data.imagefolder import read_entries, scan, split_folders
from fer_edge.data.imageio import Progress
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset

NAMES = {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}


def looks_like(path: Path) -> bool:
    splits = {s.lower(): s for s in split_folders(path)}
    if "train" not in splits or "test" not in splits:
        return False
    classes = {s: {d.lower() for d in subdirs(path / real)} for s, real in splits.items()}
    return classes["train"] == NAMES and all(c and c <= NAMES for c in classes.values())


@DATASETS.register("fer2013_folders")
class Fer2013FoldersLayout:
    version = 1
    priority = 10
    description = "FER2013 image folders: train/ test/ [val/]/<angry|disgust|...|surprise>/*.png, 48x48 gray"

    def detect(self, path: Path) -> bool:
        return looks_like(path)

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        return read_entries(self.name, path, scan(path), (48, 48), False, strict, progress)
