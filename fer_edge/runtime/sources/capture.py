"""cv2.VideoCapture sources that can drop (cameras, network streams): read with bounded reopen and backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import cv2

from fer_edge.errors import SourceError
from fer_edge.runtime.sources.base import Frame, SourceBase, quiet_opencv, valid_image


class ReconnectingCapture(SourceBase):
    """A capture that, when reads fail, reopens up to ``retries`` times with doubling waits (``backoff`` s first,
    at most ``max_wait`` s) before giving up with a SourceError. A successful read resets the count."""

    live = True

    def __init__(self, spec: str, retries: int = 5, backoff: float = 0.25, max_wait: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(spec)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)
        self._sleep = sleep
        self.cap = self._open()
        if self.cap is None:
            raise SourceError(self.not_found())

    def _capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def not_found(self) -> str:
        return f"{self.describe()} not found"

    def _open(self) -> cv2.VideoCapture | None:
        try:
            with quiet_opencv():
                cap = self._capture()
        except cv2.error:
            return None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        return cap

    def _reopen(self) -> bool:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        wait = self.backoff
        for attempt in range(1, self.retries + 1):
            self._sleep(wait)
            self.cap = self._open()
            if self.cap is not None:
                self.stats.reconnects += 1
                return True
            self.stats.problems.append(f"reopen attempt {attempt} of {self.retries} failed")
            wait = min(wait * 2, self.max_wait)
        return False

    def frames(self) -> Iterator[Frame]:
        failures = 0
        while self.cap is not None:
            ok, img = self.cap.read()
            if ok and valid_image(img):
                failures = 0
                yield self._emit(img)
                continue
            if ok:  # a read that returns garbage: skip it, count it, keep going (bounded)
                self.stats.skip(f"corrupt frame after frame {self.stats.frames}")
                failures += 1
                if failures < 25:
                    continue
            if not self._reopen():
                raise SourceError(f"{self.describe()} dropped and could not be reopened "
                                  f"after {self.retries} attempts")
            failures = 0

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
