"""Reading face images robustly: corrupt files are skipped and counted (or fail with --strict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import DataError

MAX_REPORTED = 5


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
        head = [f"{len(self.bad)} unreadable image(s) skipped"] + self.bad[:MAX_REPORTED]
        return tuple(head)


def _decode(path: Path, flags: int) -> np.ndarray | None:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, flags)


def read_gray(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W) uint8 grayscale, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img = _decode(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        log.fail(path, "not a readable image")
        return None
    if size is not None and img.shape[::-1] != tuple(size):
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def read_rgb(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img = _decode(path, cv2.IMREAD_COLOR)
    if img is None:
        log.fail(path, "not a readable image")
        return None
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[1::-1] != tuple(size):
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img
