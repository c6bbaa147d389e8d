"""JAFFE: a flat folder of 256x256 gray photos named ``KA.AN1.39.tiff`` (subject, expression + take, id).

Some files are palette images whose palette is gray; they are decoded through the palette (OpenCV's
grayscale read applies it), not as raw palette indices. Faces are cropped and resized to 96x96 gray.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fer_edge.data.common import build, image_names
from fer_edge.data.faces import FaceCropper, load_detector, photo_salt
from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_gray
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset
from fer_edge.labels import index

PATTERN = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.tiff?$", re.IGNORECASE)
CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "NE": "neutral", "SA": "sadness",
         "SU": "surprise"}
SIZE = 96
# JAFFE faces sit a little below the photo's centre and fill about 60% of it (used when no face is found)
FALLBACK = {"fallback_scale": 0.62, "fallback_centre": (0.5, 0.57)}


def parse_name(name: str) -> tuple[str, str] | None:
    """(subject, canonical emotion) of a JAFFE file name, or None if it is not one."""
    m = PATTERN.match(name)
    if not m or m.group(2).upper() not in CODES:
        return None
    return m.group(1).upper(), CODES[m.group(2).upper()]


@DATASETS.register("jaffe")
class JaffeLayout:
    version = 1
    priority = 10
    description = "JAFFE: flat KA.AN1.39.tiff files (subject.EXPRn.id), 256x256 gray, cropped to 96x96"

    def detect(self, path: Path) -> bool:
        names = image_names(path)
        return bool(names) and sum(parse_name(n) is not None for n in names) >= 0.9 * len(names)

    def cache_salt(self) -> str:
        return photo_salt(load_detector()[0])

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        entries = [(n, parsed) for n in image_names(path) if (parsed := parse_name(n))]
        log = ImageReadLog(strict=strict)
        crop = FaceCropper.auto(SIZE, **FALLBACK)

        def read_one(p: Path) -> np.ndarray | None:
            img = read_gray(p, log)
            return None if img is None else crop(img, p.name)

        images, kept = read_all([path / n for n, _ in entries], read_one, progress)
        picked = [entries[i] for i in kept]
        return build(self.name, path, images, [index(e) for _, (_, e) in picked], CODES.values(),
                     log.problems() + crop.problems(),
                     subjects=[s for _, (s, _) in picked], files=[n for n, _ in picked])
