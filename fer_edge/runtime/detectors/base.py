"""What a face detector is: a registry entry with ``is_available()``, an install hint and ``detect(image)``."""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from fer_edge.registry import Registry
from fer_edge.runtime.types import Face


class Detector(Protocol):
    """An opened detector. ``detect`` takes a BGR or gray uint8 image and returns faces, largest score first."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


class DetectorBase:
    """Shared options: minimum face side in pixels, maximum faces kept, score threshold, NMS IoU."""

    name: ClassVar[str] = ""
    hint: ClassVar[str] = ""  # what to install when is_available() is False
    options: ClassVar[tuple[str, ...]] = ("min_face", "max_faces", "score_threshold", "nms_iou")  # all it takes

    def __init__(self, min_face: int = 0, max_faces: int = 0, score_threshold: float = 0.5,
                 nms_iou: float = 0.3) -> None:
        self.min_face = int(min_face)
        self.max_faces = int(max_faces)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)

    @classmethod
    def is_available(cls) -> bool:
        return True

    def detect(self, image: np.ndarray) -> list[Face]:
        raise NotImplementedError

    def _finish(self, faces: list[Face]) -> list[Face]:
        """Drop faces below ``min_face``, sort by score, keep at most ``max_faces``."""
        faces = [f for f in faces if min(f.box[2], f.box[3]) >= max(1, self.min_face)]
        faces.sort(key=lambda f: -f.score)
        return faces[: self.max_faces] if self.max_faces > 0 else faces


def as_bgr(image: np.ndarray) -> np.ndarray:
    """uint8 gray (H, W) / (H, W, 1) or BGR (H, W, 3) / BGRA -> BGR (H, W, 3)."""
    if image.ndim == 2 or image.shape[2] == 1:
        import cv2

        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return image[..., :3]
    return image


DETECTORS: Registry[type[DetectorBase]] = Registry("detector")
