"""The one structure every dataset reader returns, and the protocol a reader implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from fer_edge.labels import EMOTIONS

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FaceDataset:
    """Faces of one dataset, as plain numpy arrays.

    images:   (N, H, W, C) uint8, C = 1 (gray) or 3 (RGB); one size per dataset.
    labels:   (N,) int64 canonical indices into ``fer_edge.labels.EMOTIONS``; -1 = no usable label
              (e.g. a FERPlus face whose votes tie or go to unknown / not-a-face).
    classes:  canonical names of the classes this dataset uses, in canonical order.
    soft:     (N, 8) float32 vote distributions over EMOTIONS, where the dataset has them.
    subjects: (N,) str subject ids, where the dataset has them.
    split:    (N,) str official split ("train" / "val" / "test"), where the dataset has one.
    files:    (N,) str source file of each face (relative to root), for reports.
    """

    name: str
    root: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    soft: np.ndarray | None = None
    subjects: np.ndarray | None = None
    split: np.ndarray | None = None
    files: np.ndarray | None = None
    problems: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, C) uint8, got {self.images.shape} {self.images.dtype}")
        for name in ("labels", "soft", "subjects", "split", "files"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows for {n} images")
        unknown = set(self.classes) - set(EMOTIONS)
        if unknown:
            raise ValueError(f"classes not in the canonical space: {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def take(self, idx: np.ndarray) -> FaceDataset:
        """A new dataset with the rows ``idx`` (indices or boolean mask)."""
        pick = (lambda a: None if a is None else a[idx])  # noqa: E731
        return replace(self, images=self.images[idx], labels=self.labels[idx], soft=pick(self.soft),
                       subjects=pick(self.subjects), split=pick(self.split), files=pick(self.files))

    def labelled(self) -> FaceDataset:
        """Only the faces with a usable hard label."""
        return self.take(self.labels >= 0)

    def only_split(self, name: str) -> FaceDataset:
        """Faces of one official split; raises if the dataset has no official split."""
        if self.split is None:
            raise ValueError(f"{self.name} has no official split")
        return self.take(self.split == name)

    def class_counts(self) -> dict[str, int]:
        """Faces per class (canonical names), over the labelled faces."""
        return {c: int(np.sum(self.labels == EMOTIONS.index(c))) for c in self.classes}

    def local_labels(self) -> np.ndarray:
        """Labels as indices into ``self.classes`` (what a classifier head of this dataset predicts)."""
        lut = np.full(len(EMOTIONS), -1, dtype=np.int64)
        for i, c in enumerate(self.classes):
            lut[EMOTIONS.index(c)] = i
        return np.where(self.labels >= 0, lut[np.clip(self.labels, 0, None)], -1)

    def local_soft(self) -> np.ndarray | None:
        """Soft labels restricted to ``self.classes`` and renormalized."""
        if self.soft is None:
            return None
        cols = [EMOTIONS.index(c) for c in self.classes]
        s = self.soft[:, cols]
        return (s / np.clip(s.sum(axis=1, keepdims=True), 1e-8, None)).astype(np.float32)


class Layout(Protocol):
    """A dataset layout on disk. Registered in ``fer_edge.data.DATASETS``.

    ``version`` is part of the cache key: bump it when a reader's output changes. ``priority`` orders
    auto-detection (lower first; layouts of equal priority never both detect one path). An optional
    ``cache_salt() -> str`` adds reader options (e.g. the face detector used) to the cache key, and an
    optional ``sources(path) -> list[Path]`` names the files the cache fingerprints (default: all under path).
    ``progress(done, total)``, when given, is called while images are read.
    """

    name: str
    description: str
    version: int
    priority: int

    def detect(self, path: Path) -> bool:
        """True when ``path`` looks like this layout (cheap: file names only)."""
        ...

    def read(self, path: Path, strict: bool = False,
             progress: Callable[[int, int], None] | None = None) -> FaceDataset:
        """Read every face. Corrupt images are skipped and listed in ``problems`` unless ``strict``."""
        ...
