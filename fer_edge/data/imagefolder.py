"""Generic class folders: ``<root>/<class>/*.jpg|png`` or ``<root>/<split>/<class>/*``.

Class folder names may be any alias of a canonical emotion (``happy``, ``Angry``, ``sad`` ...); split folders
are train / val (valid, validation) / test. Detected last: more specific layouts are tried first.
Image size and colour follow the first image unless the layout is given them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_edge.data.common import SPLIT_FOLDERS, build, image_names, is_emotion, subdirs
from fer_edge.data.imageio import ImageReadLog, Progress, decode_file, read_all, read_gray, read_rgb
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import canonical, index

Entry = tuple[str | None, str, str]  # split (None without split folders), class folder, file relative to root


def split_folders(path: Path) -> list[str]:
    """The split sub-folders of ``path`` when all its sub-folders are split names, else []."""
    dirs = subdirs(path)
    return dirs if dirs and all(d.lower() in SPLIT_FOLDERS for d in dirs) else []


def class_folders(path: Path) -> list[str]:
    """The class sub-folders of ``path`` when all its sub-folders are emotion names, else []."""
    dirs = subdirs(path)
    return dirs if dirs and all(is_emotion(d) for d in dirs) else []


def scan(path: Path) -> list[Entry]:
    """Every image of a class-folder tree, with or without split folders."""
    splits = split_folders(path)
    groups = [(SPLIT_FOLDERS[s.lower()], f"{s}/") for s in splits] if splits else [(None, "")]
    entries: list[Entry] = []
    for split, prefix in groups:
        for cls in class_folders(path / prefix):
            entries += [(split, cls, f"{prefix}{cls}/{n}") for n in image_names(path / prefix / cls)]
    return entries


def looks_like(path: Path) -> bool:
    splits = split_folders(path)
    return all(class_folders(path / s) for s in splits) if splits else bool(class_folders(path))


def probe(path: Path) -> tuple[tuple[int, int], bool]:
    """(width, height) and whether an image is really colour (not gray stored as 3 channels)."""
    img, why = decode_file(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: {why} (used to choose the dataset's image size)")
    color = img.ndim == 3 and img.shape[2] >= 3 and int(np.ptp(img[..., :3].astype(np.int16), axis=2).max()) > 8
    return (img.shape[1], img.shape[0]), color


def read_entries(
    name: str, root: Path, entries: list[Entry], size: tuple[int, int] | None, color: bool | None,
    strict: bool, progress: Progress | None,
) -> FaceDataset:
    """Read class-folder entries into one dataset of one image size."""
    if not entries:
        raise DataError(f"{root}: {name} layout found but no images in its class folders")
    if size is None or color is None:
        probed_size, probed_color = probe(root / entries[0][2])
        size = size or probed_size
        color = probed_color if color is None else color
    log = ImageReadLog(strict=strict)
    reader = read_rgb if color else read_gray
    images, kept = read_all([root / e[2] for e in entries], lambda p: reader(p, log, size=size), progress)
    picked = [entries[i] for i in kept]
    has_split = entries[0][0] is not None
    return build(name, root, images, [index(c) for _, c, _ in picked], [canonical(c) for _, c, _ in entries],
                 log.problems(), split=[s for s, _, _ in picked] if has_split else None,
                 files=[f for _, _, f in picked])


@DATASETS.register("imagefolder")
class ImageFolderLayout:
    version = 1
    priority = 90  # generic: tried after every specific class-folder layout
    description = "class folders: <root>/[train|val|test/]<emotion>/*.jpg|png (any emotion alias)"

    def __init__(self, size: tuple[int, int] | None = None, color: bool | None = None) -> None:
        self.size = size
        self.color = color

    def detect(self, path: Path) -> bool:
        return looks_like(path)

    def cache_salt(self) -> str:
        return f"size{self.size}-color{self.color}"

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        return read_entries(self.name, path, scan(path), self.size, self.color, strict, progress)
