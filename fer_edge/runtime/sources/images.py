"""Still images: one file, or every image in a folder (sorted by name); unreadable images are skipped and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2

from fer_edge.errors import SourceError
from fer_edge.runtime.sources.base import SOURCES, Frame, SourceBase, valid_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})


def image_or_reason(path: Path) -> tuple[object, str]:
    """(BGR uint8 image, "") or (None, why): it cannot be decoded, or it declares more pixels than
    $FER_EDGE_MAX_PIXELS allows (read from its header, before anything is decoded)."""
    from fer_edge.data.imageio import decode_file

    img, why = decode_file(path, cv2.IMREAD_COLOR)
    return (img, "") if valid_image(img) else (None, why or "not a readable image")


def read_image(path: Path) -> object:
    """BGR (or gray, for 1-channel files) uint8 image, or None when it cannot be decoded (or is too large)."""
    return image_or_reason(path)[0]


@SOURCES.register("image")
class ImageSource(SourceBase):
    """``ImageSource("face.jpg")``: a single frame."""

    kind = "image"

    def __init__(self, spec: str) -> None:
        super().__init__(str(spec))
        self.path = Path(spec)
        if not self.path.is_file():
            raise SourceError(f"image {spec} not found")

    @classmethod
    def accepts(cls, spec: str) -> bool:
        return Path(spec).suffix.lower() in IMAGE_SUFFIXES and Path(spec).is_file()

    def frames(self) -> Iterator[Frame]:
        img, why = image_or_reason(self.path)
        if img is None:
            raise SourceError(f"image {self.spec} cannot be decoded: {why}")
        yield self._emit(img, 0.0, self.path.name)


@SOURCES.register("folder")
class FolderSource(SourceBase):
    """``FolderSource("photos/")``: every image file in the folder (not recursive), sorted by name."""

    kind = "folder"

    def __init__(self, spec: str) -> None:
        super().__init__(str(spec))
        self.path = Path(spec)
        if not self.path.is_dir():
            raise SourceError(f"folder {spec} not found")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise SourceError(f"folder {spec} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    @classmethod
    def accepts(cls, spec: str) -> bool:
        return Path(spec).is_dir()

    def frames(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            img = read_image(path)
            if img is None:
                self.stats.skip(f"{path.name} cannot be decoded")
                continue
            yield self._emit(img, float(i), path.name)
