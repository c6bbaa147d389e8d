"""OpenCV Haar cascade: the zero-extra fallback detector on OpenCV 4.x. OpenCV 5 dropped ``cv2.CascadeClassifier``
from the main module and its wheels ship no cascade XML files; on 4.x the file is looked up in cv2.data (wheels),
then the Debian/Ubuntu opencv-data folders."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.detectors.base import DETECTORS, DetectorBase
from fer_edge.runtime.types import Face

CASCADE = "haarcascade_frontalface_default.xml"
HINT = ("no Haar cascade XML found (opencv-python 5.x wheels carry none): pip install 'opencv-python-headless<5', "
        "or apt install opencv-data, or pass --detector-model PATH.xml")
NO_CASCADES = ("this OpenCV ({version}) has no cv2.CascadeClassifier (removed in OpenCV 5): "
               "pip install 'opencv-python-headless<5' for the Haar detector, or use --detector blazeface")


def cascade_dirs() -> list[Path]:
    dirs = []
    data = getattr(cv2, "data", None)
    if data is not None and getattr(data, "haarcascades", None):
        dirs.append(Path(data.haarcascades))
    dirs += [Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades"),
             Path("/usr/local/share/opencv4/haarcascades")]
    return dirs


def find_cascade(name: str = CASCADE) -> Path | None:
    return next((d / name for d in cascade_dirs() if (d / name).is_file()), None)


@DETECTORS.register("haar")
class HaarDetector(DetectorBase):
    """Viola-Jones frontal-face cascade on a downscaled gray frame; score is 1.0 (cascades give none)."""

    hint: ClassVar[str] = HINT if hasattr(cv2, "CascadeClassifier") else NO_CASCADES.format(version=cv2.__version__)
    options: ClassVar[tuple[str, ...]] = (*DetectorBase.options, "model_path", "max_side", "min_neighbors")

    def __init__(self, min_face: int = 0, max_faces: int = 0, score_threshold: float = 0.5, nms_iou: float = 0.3,
                 model_path: str | Path | None = None, max_side: int = 320, min_neighbors: int = 5) -> None:
        super().__init__(min_face, max_faces, score_threshold, nms_iou)
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError(NO_CASCADES.format(version=cv2.__version__))
        path = Path(model_path) if model_path else find_cascade()
        if path is None or not path.is_file():
            raise ModelError(HINT if model_path is None else f"{model_path}: Haar cascade file not found")
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ModelError(f"{path}: not a valid OpenCV cascade XML")
        self.max_side = int(max_side)
        self.min_neighbors = int(min_neighbors)
        self.model_path = path

    @classmethod
    def is_available(cls) -> bool:
        return hasattr(cv2, "CascadeClassifier") and find_cascade() is not None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR or gray uint8 image."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape[:2]
        r = min(1.0, self.max_side / max(h, w)) if self.max_side else 1.0
        small = cv2.resize(gray, (round(w * r), round(h * r)), interpolation=cv2.INTER_AREA) if r < 1 else gray
        small = cv2.equalizeHist(small)
        min_px = max(20, int(self.min_face * r))
        rects = self.cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                              minSize=(min_px, min_px))
        faces = [Face((int(x / r), int(y / r), int(bw / r), int(bh / r)), 1.0) for x, y, bw, bh in rects]
        return self._finish(faces)
