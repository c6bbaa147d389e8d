"""RAF-DB basic: EmoLabel/list_patition_label.txt (``train_00001.jpg 5``) + Image/aligned/<stem>_aligned.jpg.

Labels 1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral; the split is the name's prefix.
Aligned faces are 100x100 RGB. ``read_labels`` reads the label file alone (no images needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.data.common import build
from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_rgb
from fer_edge.data.registry import DATASETS
from fer_edge.data.textio import open_text
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import index

CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")  # RAF-DB labels 1..7
TO_CANONICAL = {i + 1: index(c) for i, c in enumerate(CLASSES)}
LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"  # sic: RAF-DB's spelling
ALIGNED = Path("Image") / "aligned"
SIZE = (100, 100)


@dataclass(frozen=True)
class RafLabels:
    """The label file alone: image names, canonical labels and splits (train / test)."""

    names: tuple[str, ...]
    labels: np.ndarray
    split: np.ndarray

    def counts(self) -> dict[str, int]:
        return {s: int(np.sum(self.split == s)) for s in ("train", "test")}


def raf_label(text: str, where: str) -> int:
    """Canonical index of a RAF-DB label string ``1``..``7``."""
    try:
        return TO_CANONICAL[int(text)]
    except (ValueError, KeyError):
        raise DataError(f"{where}: label must be 1..7, got {text!r}") from None


def split_of_name(name: str, where: str) -> str:
    prefix = name.split("_", 1)[0].lower()
    if prefix not in ("train", "test"):
        raise DataError(f"{where}: image name {name!r} starts with neither train_ nor test_")
    return prefix


def read_labels(path: str | Path) -> RafLabels:
    """Parse ``EmoLabel/list_patition_label.txt`` under ``path`` (or that file itself)."""
    path = Path(path)
    label_file = path if path.is_file() else path / LABEL_FILE
    if not label_file.is_file():
        raise DataError(f"{path}: no {LABEL_FILE}")
    names, labels, split = [], [], []
    with open_text(label_file) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{label_file}:{lineno}"
            if len(fields) != 2:
                raise DataError(f"{where}: expected '<name>.jpg <label 1..7>', got {line.strip()!r}")
            names.append(fields[0])
            labels.append(raf_label(fields[1], where))
            split.append(split_of_name(fields[0], where))
    return RafLabels(tuple(names), np.asarray(labels, dtype=np.int64), np.asarray(split))


def aligned_name(name: str) -> str:
    """``train_00001.jpg`` -> ``train_00001_aligned.jpg``."""
    stem = name.rsplit(".", 1)[0]
    return f"{stem}_aligned.jpg"


@DATASETS.register("rafdb")
class RafDbLayout:
    version = 1
    priority = 10
    description = "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/*_aligned.jpg (100x100 RGB)"

    def detect(self, path: Path) -> bool:
        return (path / LABEL_FILE).is_file()

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        raf = read_labels(path)
        if not (path / ALIGNED).is_dir():
            counts = raf.counts()
            raise DataError(f"{path}: labels read ({counts['train']:,} train / {counts['test']:,} test) but "
                            f"{ALIGNED}/ is missing; RAF-DB images must be obtained from its authors")
        log = ImageReadLog(strict=strict)
        files = [f"{ALIGNED.as_posix()}/{aligned_name(n)}" for n in raf.names]
        images, kept = read_all([path / f for f in files], lambda p: read_rgb(p, log, size=SIZE), progress)
        return build(self.name, path, images, raf.labels[kept], CLASSES, log.problems(),
                     split=raf.split[kept], files=np.asarray(files)[kept])
