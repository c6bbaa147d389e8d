"""A video file read by cv2.VideoCapture; undecodable frames inside the file are skipped and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2

from fer_edge.errors import SourceError
from fer_edge.runtime.sources.base import SOURCES, Frame, SourceBase, quiet_opencv, valid_image

MAX_CONSECUTIVE_BAD = 30  # after this many failed reads in a row the file is taken as ended


@SOURCES.register("video")
class VideoSource(SourceBase):
    """``VideoSource("clip.mp4")``: frames in order, time = media time in seconds."""

    kind = "video"

    def __init__(self, spec: str) -> None:
        super().__init__(str(spec))
        path = Path(spec)
        if not path.is_file():
            raise SourceError(f"video {spec} not found")
        with quiet_opencv():
            self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f"video {spec} cannot be read (not a video, or a codec OpenCV lacks)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0
        self.count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    @classmethod
    def accepts(cls, spec: str) -> bool:
        return Path(spec).is_file()

    def frames(self) -> Iterator[Frame]:
        pending = 0  # failed reads; counted as skipped only if a good frame follows (else it was the end)
        pos = 0
        while self.cap is not None:
            ok, img = self.cap.read()
            pos += 1
            if ok and valid_image(img):
                for _ in range(pending):
                    self.stats.skip(f"undecodable frame before frame {pos - 1}")
                pending = 0
                yield self._emit(img, (pos - 1) / self.fps if self.fps > 0 else None)
                continue
            if not ok and 0 < self.count < pos:
                break  # past the last frame the container announced
            pending += 1
            if pending >= MAX_CONSECUTIVE_BAD:
                break
        if self.stats.frames == 0:
            raise SourceError(f"video {self.spec} has no decodable frames")

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
