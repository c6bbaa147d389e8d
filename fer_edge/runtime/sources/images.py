"""Still images: one file, or every image in a folder (sorted by name); unreadable images are skipped and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2

from fer_edge.errors import SourceError
from fer_edge.runtime.sources.base import SOURCES, Frame, SourceBase, valid_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})


def read_image(path: Path) -> object:
    """BGR (or gray, for 1-channel files) uint8 image, or None when it cannot be decoded."""
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return img if valid_image(img) else None


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
        img = read_image(self.path)
        if img is None:
            raise SourceError(f"image {self.spec} cannot be decoded")
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
