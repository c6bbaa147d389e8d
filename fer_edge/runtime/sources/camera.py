"""A local camera by index (V4L2 on Linux: /dev/videoN; CSI cameras on a Pi/Jetson via their V4L2 driver)."""

from __future__ import annotations

import cv2

from fer_edge.runtime.sources.base import SOURCES
from fer_edge.runtime.sources.capture import ReconnectingCapture


@SOURCES.register("camera")
class CameraSource(ReconnectingCapture):
    """``CameraSource("0", width=640, height=480)``; a camera that drops is reopened with backoff."""

    kind = "camera"

    def __init__(self, spec: str | int, width: int | None = None, height: int | None = None,
                 fps: float | None = None, **kwargs: float) -> None:
        self.index = int(spec)
        self.size = (width, height)
        self.fps = fps
        super().__init__(str(spec), **kwargs)

    @classmethod
    def accepts(cls, spec: str) -> bool:
        return str(spec).isdigit()

    def _capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.index)
        if cap.isOpened():
            w, h = self.size
            if w and h:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            if self.fps:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep latency low where the backend honours it
        return cap
