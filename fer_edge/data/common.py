"""Small helpers shared by the readers: listing image files, canonical class order, building a FaceDataset."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import ALIASES, EMOTIONS, canonical

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTS)


def subdirs(path: Path) -> list[str]:
    """Names of the visible sub-folders of ``path`` (sorted); [] if ``path`` is not a folder."""
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []


def image_names(path: Path) -> list[str]:
    """Names of the image files directly in ``path`` (sorted); [] if ``path`` is not a folder."""
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_file() and is_image(e.name) and not e.name.startswith("."))
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []


def first_image(path: Path) -> str | None:
    """Name of some image file directly in ``path`` without listing the whole folder."""
    try:
        with os.scandir(path) as it:
            return next((e.name for e in it if is_image(e.name) and not e.name.startswith(".")), None)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return None


def is_emotion(name: str) -> bool:
    return name.strip().lower() in ALIASES


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical names (of any aliases) in canonical (FERPlus) order."""
    wanted = {canonical(n) for n in names}
    return tuple(e for e in EMOTIONS if e in wanted)


def to_nhwc(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack (H, W) or (H, W, C) uint8 images into (N, H, W, C)."""
    arr = np.stack(images)
    return arr[..., None] if arr.ndim == 3 else arr


def build(
    name: str,
    root: Path,
    images: Sequence[np.ndarray],
    labels: Sequence[int],
    classes: Iterable[str],
    problems: Sequence[str] = (),
    **columns: Sequence | np.ndarray | None,
) -> FaceDataset:
    """A FaceDataset from per-face lists; ``columns`` are the optional fields (soft, subjects, split, files)."""
    if len(images) == 0:
        raise DataError(f"{root}: {name} layout found but no readable images")
    arrays = {k: None if v is None else np.asarray(v) for k, v in columns.items()}
    return FaceDataset(name=name, root=str(root), images=to_nhwc(images),
                       labels=np.asarray(labels, dtype=np.int64), classes=ordered(classes),
                       problems=tuple(problems), **arrays)
