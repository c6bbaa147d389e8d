"""CK+48: the common 48x48 crop of CK+, ``<class>/S010_004_00000017.png`` (subject_sequence_frame)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fer_edge.data.common import build, first_image, image_names, is_emotion, subdirs
from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_gray
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset
from fer_edge.labels import canonical, index

PATTERN = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)
SIZE = (48, 48)


def class_folders(path: Path) -> list[str]:
    """Sub-folders of ``path`` named after an emotion."""
    return [d for d in subdirs(path) if is_emotion(d)]


@DATASETS.register("ckplus48")
class CkPlus48Layout:
    version = 1
    priority = 10
    description = "CK+48: <class>/S010_004_00000017.png (anger, contempt, ... surprise), 48x48 gray"

    def detect(self, path: Path) -> bool:
        folders = class_folders(path)
        if not folders or len(folders) != len(subdirs(path)):
            return False
        firsts = [first_image(path / d) for d in folders]
        return all(f is not None and PATTERN.match(f) for f in firsts)

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        files, labels, subjects = [], [], []
        for folder in class_folders(path):
            for name in image_names(path / folder):
                m = PATTERN.match(name)
                files.append(f"{folder}/{name}")
                labels.append(index(folder))
                subjects.append(m.group(1).upper() if m else "?")
        log = ImageReadLog(strict=strict)
        images, kept = read_all([path / f for f in files], lambda p: read_gray(p, log, size=SIZE), progress)
        problems = list(log.problems())
        odd = sum(s == "?" for s in subjects)
        if odd:
            problems.append(f"{odd} file name(s) without a subject (expected S010_004_00000017.png)")
        return build(self.name, path, images, np.asarray(labels)[kept],
                     [canonical(d) for d in class_folders(path)], problems,
                     subjects=np.asarray(subjects)[kept], files=np.asarray(files)[kept])
