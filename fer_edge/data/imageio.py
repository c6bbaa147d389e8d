"""Reading face images robustly: corrupt files are skipped and counted (or fail with --strict).

Images are untrusted: the size a file declares in its header is read first (``imagesize``, no decoding) and a
file over ``max_pixels()`` (``FER_EDGE_MAX_PIXELS``, default 64 Mi pixels) or whose header names no size is
refused before OpenCV allocates anything, so a small file declaring 30000x30000 pixels costs nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import DataError

MAX_REPORTED = 5
DEFAULT_MAX_PIXELS = 1 << 26  # 67,108,864 (8192 x 8192): any photo; a 3-channel image this size is 192 MiB
MAX_PIXELS_ENV = "FER_EDGE_MAX_PIXELS"
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


def max_pixels() -> int:
    """The most pixels (width x height) an image may declare: ``$FER_EDGE_MAX_PIXELS`` or DEFAULT_MAX_PIXELS."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: expected a positive number of pixels")
    return value


def declared_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) an encoded image declares in its header, without decoding it; None if unknown."""
    import imagesize

    try:
        w, h = imagesize.get(io.BytesIO(bytes(data)))
    except Exception:  # a malformed header is an unknown size, whatever imagesize raises on it
        return None
    return (int(w), int(h)) if w > 0 and h > 0 else None


def decode(data: np.ndarray, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str]:
    """(image, "") for encoded bytes within the pixel limit, else (None, why); the size is checked first."""
    if data.size == 0:
        return None, "not a readable image (empty file)"
    size = declared_size(data)
    if size is None:
        return None, "not a readable image (no image size in its header)"
    limit = max_pixels()
    if size[0] * size[1] > limit:
        return None, (f"declares {size[0]}x{size[1]} pixels, over the limit of {limit:,} "
                      f"(set {MAX_PIXELS_ENV} to allow more)")
    try:
        img = cv2.imdecode(data, flags)
    except cv2.error:
        img = None
    return (img, "") if img is not None else (None, "not a readable image")


def decode_file(path: Path, flags: int) -> tuple[np.ndarray | None, str]:
    """``decode`` of a file's bytes: (image, "") or (None, why). A file larger than any image within the pixel
    limit could be (8 bytes a pixel, 16-bit RGBA uncompressed) is refused without being read."""
    try:
        size = os.stat(path).st_size
        if size > 8 * max_pixels() + (1 << 20):
            return None, f"{size:,} bytes, more than an image within the pixel limit can take (see {MAX_PIXELS_ENV})"
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None, "not a readable image" if Path(path).is_file() else "missing file"
    return decode(data, flags)


def load_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """One image file decoded with ``flags`` after its declared size is checked; DataError naming it if not."""
    img, why = decode_file(Path(path), flags)
    if img is None:
        raise DataError(f"{path}: {why}")
    return img


def read_gray(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W) uint8 grayscale, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img, why = decode_file(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        log.fail(path, why)
        return None
    if size is not None and img.shape[::-1] != tuple(size):
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def read_rgb(path: Path, log: ImageReadLog, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, resized to ``size`` (w, h) if given; None (logged) if unreadable."""
    img, why = decode_file(path, cv2.IMREAD_COLOR)
    if img is None:
        log.fail(path, why)
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
