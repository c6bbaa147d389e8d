"""RAF-DB as class folders (the common ``DATASET/`` download): train/1..7/*.jpg and test/1..7/*.jpg."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.data.common import build, image_names, subdirs
from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_rgb
from fer_edge.data.rafdb import CLASSES, SIZE, raf_label
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset

SPLITS = ("train", "test")
CODES = {str(i) for i in range(1, 8)}


def root_of(path: Path) -> Path:
    """The folder holding train/ and test/: ``path`` or its ``DATASET/`` sub-folder."""
    return path / "DATASET" if (path / "DATASET").is_dir() and not (path / "train").is_dir() else path


def looks_like(path: Path) -> bool:
    root = root_of(path)
    found = [set(subdirs(root / s)) for s in SPLITS]
    return all(f and f <= CODES for f in found)


@DATASETS.register("rafdb_folders")
class RafDbFoldersLayout:
    version = 1
    priority = 10
    description = "RAF-DB class folders: [DATASET/]train/1..7/ and test/1..7/ with aligned 100x100 jpgs"

    def detect(self, path: Path) -> bool:
        return looks_like(path)

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        root = root_of(path)
        files, labels, split = [], [], []
        for s in SPLITS:
            for code in subdirs(root / s):
                names = image_names(root / s / code)
                label = raf_label(code, str(root / s / code))
                files += [f"{s}/{code}/{n}" for n in names]
                labels += [label] * len(names)
                split += [s] * len(names)
        log = ImageReadLog(strict=strict)
        images, kept = read_all([root / f for f in files], lambda p: read_rgb(p, log, size=SIZE), progress)
        return build(self.name, root, images, np.asarray(labels)[kept], CLASSES, log.problems(),
                     split=np.asarray(split)[kept], files=np.asarray(files)[kept])
