"""Face crops for datasets of full photos (JAFFE, original CK+).

The runtime's face detector is used when it can be imported (``fer_edge.runtime.detectors.get_detector``);
the largest face's box becomes the crop by a ``fer_edge.preprocess.CropRule`` (default ``CROP``: grown 8% of its side
on each side into a square). Without a detector, or when no face is found,
a centred square is cropped instead and the reader lists it in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fer_edge.preprocess import DEFAULT_CROP, CropRule

Box = tuple[int, int, int, int]  # x, y, w, h
CROP = DEFAULT_CROP  # the rule full photos are cropped by; a run record carries it, the manifest hands it on


def load_detector(name: str = "auto") -> tuple[Any | None, str]:
    """The runtime's face detector and a one-line note; (None, why) when none can be had."""
    try:
        from fer_edge.runtime.detectors import get_detector
    except ImportError as exc:
        return None, f"no face detector available ({exc})"
    try:
        det = get_detector(name)
    except Exception as exc:  # an optional backend may fail in many ways; the fallback is always there
        return None, f"face detector {name!r} unavailable ({type(exc).__name__}: {exc})"
    return det, f"face detector {getattr(det, 'name', type(det).__name__)}"


def detector_tag(detector: Any | None) -> str:
    """Short name of a detector (part of a cache key: another detector gives other crops)."""
    return "none" if detector is None else str(getattr(detector, "name", type(detector).__name__))


def largest_face(image: np.ndarray, detector: Any) -> Box | None:
    """Box of the largest face ``detector`` finds in ``image`` (gray or BGR uint8), or None."""
    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 or image.shape[2] == 1 else image
    faces = detector.detect(bgr)
    if not faces:
        return None
    best = max(faces, key=lambda f: (int(f.box[2]) * int(f.box[3]), float(f.score)))
    x, y, w, h = (int(v) for v in best.box)
    return (x, y, w, h) if w > 0 and h > 0 else None


def centre_box(shape: tuple[int, ...], scale: float = 0.6, centre: tuple[float, float] = (0.5, 0.5)) -> Box:
    """A square of ``scale`` x the shorter side, centred at ``centre`` (fractions of width, height)."""
    img_h, img_w = shape[:2]
    side = max(1, round(min(img_w, img_h) * scale))
    box = (round(centre[0] * img_w - side / 2), round(centre[1] * img_h - side / 2), side, side)
    return CropRule(margin=0.0).box(box, shape)


def cut(image: np.ndarray, box: Box, size: int | None) -> np.ndarray:
    x, y, w, h = box
    crop = image[y : y + h, x : x + w]
    if size is not None and crop.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    return crop


def crop_face(
    image: np.ndarray,
    size: int | None = None,
    detector: Any | None = None,
    rule: CropRule = CROP,
    fallback_scale: float = 0.6,
    fallback_centre: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """Crop of the largest face in ``image`` by ``rule`` (a centred square when ``detector`` is None or finds
    none), resized to ``size`` x ``size`` when given."""
    box = largest_face(image, detector) if detector is not None else None
    box = rule.box(box, image.shape) if box else centre_box(image.shape, fallback_scale, fallback_centre)
    return cut(image, box, size)


@dataclass
class FaceCropper:
    """Crops faces for one dataset read by ``rule`` and counts the fallbacks, for the dataset's ``problems``."""

    size: int
    rule: CropRule = CROP
    fallback_scale: float = 0.6
    fallback_centre: tuple[float, float] = (0.5, 0.5)
    detector: Any | None = None
    note: str = ""
    fallbacks: list[str] = field(default_factory=list)
    total: int = 0

    @classmethod
    def auto(cls, size: int, **kwargs: Any) -> FaceCropper:
        det, note = load_detector("auto")
        return cls(size=size, detector=det, note=note, **kwargs)

    def __call__(self, image: np.ndarray, name: str = "") -> np.ndarray:
        self.total += 1
        box = None
        if self.detector is not None:
            try:
                box = largest_face(image, self.detector)
            except Exception as exc:  # a detector failing on one image must not stop the read
                self.note = f"face detector failed ({type(exc).__name__}: {exc})"
        if box is None:
            self.fallbacks.append(name)
            box = centre_box(image.shape, self.fallback_scale, self.fallback_centre)
        else:
            box = self.rule.box(box, image.shape)
        return cut(image, box, self.size)

    def problems(self) -> tuple[str, ...]:
        if not self.fallbacks:
            return ()
        failed = self.note.startswith("face detector failed")
        why = self.note if self.detector is None or failed else "no face found"
        first = ", ".join(self.fallbacks[:3])
        return (f"{len(self.fallbacks)} of {self.total} faces cropped as a centred square ({why}); first: {first}",)
