"""Reading face images robustly: corrupt files are skipped and counted (or fail with --strict)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import DataError

MAX_REPORTED = 5
UNREADABLE = "unreadable image(s) skipped"  # first problems line when images were skipped
Progress = Callable[[int, int], None]  # progress(done, total), called while images are read


@dataclass
class ImageReadLog:
    """Counts unreadable images; with ``strict`` the first one raises."""

    strict: bool = False
    bad: list[str] = field(default_factory=list)

    def fail(self, path: Path, why: str) -> None:
        if self.strict:
            raise DataError(f"{path}: {why}")
        self.bad.append(f"{path}: {why}")

    def problems(self) -> tuple[str, ...]:
        if not self.bad:
            return ()
        return (f"{len(self.bad)} {UNREADABLE}", *self.bad[:MAX_REPORTED])


def _decode(path: Path, flags: int) -> np.ndarray | None:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, flags)


def _why(path: Path) -> str:
    return "not a readable image" if path.is_file() else "missing file"


def read_gray(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W) uint8 grayscale, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img = _decode(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        log.fail(path, _why(path))
        return None
    if size is not None and img.shape[::-1] != tuple(size):
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def read_rgb(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img = _decode(path, cv2.IMREAD_COLOR)
    if img is None:
        log.fail(path, _why(path))
        return None
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[1::-1] != tuple(size):
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def has_unreadable(problems: Sequence[str]) -> bool:
    """True when a dataset's ``problems`` say images were skipped as unreadable."""
    return any(p.endswith(UNREADABLE) for p in problems)


def read_all(
    paths: Sequence[Path],
    read: Callable[[Path], np.ndarray | None],
    progress: Progress | None = None,
    every: int = 64,
) -> tuple[list[np.ndarray], list[int]]:
    """Read every path with ``read``; returns the images read and the indices (into ``paths``) they came from.

    ``progress(done, total)`` is called before the first image, every ``every`` images and after the last.
    """
    images: list[np.ndarray] = []
    kept: list[int] = []
    total = len(paths)
    if progress is not None:
        progress(0, total)
    for i, path in enumerate(paths):
        img = read(path)
        if img is not None:
            images.append(img)
            kept.append(i)
        if progress is not None and ((i + 1) % every == 0 or i + 1 == total):
            progress(i + 1, total)
    return images, kept
