"""Face crops for datasets of full photos (JAFFE, original CK+).

The runtime's face detector is used when it can be imported (``fer_edge.runtime.detectors.get_detector``);
the largest face's box becomes the crop by a ``fer_edge.preprocess.CropRule`` (default ``CROP``: grown 8% of its side
on each side into a square), cut by ``CropRule.cut``, the runtime's own crop. ``FaceCropper(align=True)`` also
hands it the detector's eye keypoints, so tilted faces are rotated level as the runtime does; the JAFFE and CK+
readers leave it off (ALIGN_PHOTOS): on JAFFE's upright photos (median eye roll 1.5 degrees, 9 of 213 at 5 or
more) it changed 3 of 213 predictions of the default model, none from wrong to right (scripts/photo_accuracy.py,
results/photos/jaffe.json), so the cached crops stay as they were. Without a detector, or when no face is found, a
centred square is cropped instead and the reader lists it in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fer_edge.preprocess import DEFAULT_CROP, CropRule

Box = tuple[int, int, int, int]  # x, y, w, h
CROP = DEFAULT_CROP  # the rule full photos are cropped by; a run record carries it, the manifest hands it on
ALIGN_PHOTOS = False  # whether the photo readers (JAFFE, CK+) eye-align their crops; part of their cache salt


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


def largest_detection(image: np.ndarray, detector: Any) -> tuple[Box, tuple[tuple[float, float], ...]] | None:
    """(box, keypoints) of the largest face ``detector`` finds in ``image`` (gray or BGR uint8), or None."""
    bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 or image.shape[2] == 1 else image
    faces = detector.detect(bgr)
    if not faces:
        return None
    best = max(faces, key=lambda f: (int(f.box[2]) * int(f.box[3]), float(f.score)))
    x, y, w, h = (int(v) for v in best.box)
    return ((x, y, w, h), tuple(getattr(best, "keypoints", ()))) if w > 0 and h > 0 else None


def largest_face(image: np.ndarray, detector: Any) -> Box | None:
    """Box of the largest face ``detector`` finds in ``image`` (gray or BGR uint8), or None."""
    found = largest_detection(image, detector)
    return None if found is None else found[0]


def photo_salt(detector: Any | None) -> str:
    """The cache salt of a photo reader: the detector and, when on, eye alignment (both change the crops)."""
    return detector_tag(detector) + ("+align" if ALIGN_PHOTOS else "")


def centre_box(shape: tuple[int, ...], scale: float = 0.6, centre: tuple[float, float] = (0.5, 0.5)) -> Box:
    """A square of ``scale`` x the shorter side, centred at ``centre`` (fractions of width, height)."""
    img_h, img_w = shape[:2]
    side = max(1, round(min(img_w, img_h) * scale))
    box = (round(centre[0] * img_w - side / 2), round(centre[1] * img_h - side / 2), side, side)
    return CropRule(margin=0.0).box(box, shape)


def cut(image: np.ndarray, box: Box, size: int | None) -> np.ndarray:
    x, y, w, h = box
    return resized(image[y : y + h, x : x + w], size)


def resized(crop: np.ndarray, size: int | None) -> np.ndarray:
    """``crop`` resized to ``size`` x ``size`` (area when shrinking), or as it is when ``size`` is None."""
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
    if box:
        return resized(rule.cut(image, box), size)
    return cut(image, centre_box(image.shape, fallback_scale, fallback_centre), size)


@dataclass
class FaceCropper:
    """Crops faces for one dataset read by ``rule`` (``CropRule.cut``; ``align``: with the detector's eye
    keypoints, as the runtime cuts them) and counts the fallbacks, for the dataset's ``problems``."""

    size: int
    rule: CropRule = CROP
    align: bool = False
    fallback_scale: float = 0.6
    fallback_centre: tuple[float, float] = (0.5, 0.5)
    detector: Any | None = None
    note: str = ""
    fallbacks: list[str] = field(default_factory=list)
    total: int = 0

    @classmethod
    def auto(cls, size: int, **kwargs: Any) -> FaceCropper:
        """A cropper with the default detector; ``align`` defaults to ALIGN_PHOTOS (the photo readers' setting)."""
        det, note = load_detector("auto")
        return cls(size=size, detector=det, note=note, **{"align": ALIGN_PHOTOS, **kwargs})

    def __call__(self, image: np.ndarray, name: str = "") -> np.ndarray:
        self.total += 1
        found = None
        if self.detector is not None:
            try:
                found = largest_detection(image, self.detector)
            except Exception as exc:  # a detector failing on one image must not stop the read
                self.note = f"face detector failed ({type(exc).__name__}: {exc})"
        if found is None:
            self.fallbacks.append(name)
            return cut(image, centre_box(image.shape, self.fallback_scale, self.fallback_centre), self.size)
        box, keypoints = found
        return resized(self.rule.cut(image, box, keypoints if self.align else ()), self.size)

    def problems(self) -> tuple[str, ...]:
        if not self.fallbacks:
            return ()
        failed = self.note.startswith("face detector failed")
        why = self.note if self.detector is None or failed else "no face found"
        first = ", ".join(self.fallbacks[:3])
        return (f"{len(self.fallbacks)} of {self.total} faces cropped as a centred square ({why}); first: {first}",)
