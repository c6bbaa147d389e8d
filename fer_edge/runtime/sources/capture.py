"""cv2.VideoCapture sources that can drop (cameras, network streams): a first open retried for a bounded time (a
camera that comes up late at boot), reads with bounded reopen and backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2

from fer_edge.errors import SourceError
from fer_edge.runtime.sources.base import Frame, OpenCancelled, SourceBase, quiet_opencv, quiet_stderr, valid_image


class ReconnectingCapture(SourceBase):
    """A capture that, when reads fail, reopens up to ``retries`` times with doubling waits (``backoff`` s first,
    at most ``max_wait`` s) before giving up with a SourceError. A successful read resets the count.

    ``open_timeout``: a first open that fails is retried with the same doubling waits for up to that many seconds
    (``notify`` is told once) before the SourceError. ``stop`` (``is_set()``/``wait(s)``, e.g. a StopRequest)
    cuts every wait short: during the first open that raises OpenCancelled, later the frames simply end.
    """

    live = True

    def __init__(self, spec: str, retries: int = 5, backoff: float = 0.25, max_wait: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep, open_timeout: float | None = 0.0,
                 stop: Any | None = None, notify: Callable[[str], None] | None = None) -> None:
        super().__init__(spec)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)
        self._sleep = sleep
        self.stop = stop
        self.open_timeout = float(open_timeout or 0.0)
        self.cap = self._open()
        if self.cap is None and self.open_timeout > 0:
            self.cap = self._wait_for_open(notify)
        if self.cap is None:
            waited = f"; retried for {self.open_timeout:g} s (--open-timeout)" if self.open_timeout > 0 else ""
            raise SourceError(self.not_found() + waited)

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` (cut short by ``stop``); True when a stop was asked for."""
        if self.stop is not None and self._sleep is time.sleep:
            return bool(self.stop.wait(seconds))
        self._sleep(seconds)
        return bool(self.stop is not None and self.stop.is_set())

    def _wait_for_open(self, notify: Callable[[str], None] | None) -> cv2.VideoCapture | None:
        if notify is not None:
            notify(f"{self.describe()} is not ready; retrying for up to {self.open_timeout:g} s (--open-timeout)")
        deadline = time.monotonic() + self.open_timeout
        wait = self.backoff
        while (left := deadline - time.monotonic()) > 0:
            if self._pause(min(wait, left)):
                raise OpenCancelled(self.describe())
            with quiet_stderr():  # the first attempt said why; the same words every few seconds help nobody
                cap = self._open()
            if cap is not None:
                return cap
            wait = min(wait * 2, self.max_wait)
        return None

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
            if self._pause(wait):
                return False
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
                if self.stop is not None and self.stop.is_set():
                    return
                raise SourceError(f"{self.describe()} dropped and could not be reopened "
                                  f"after {self.retries} attempts")
            failures = 0

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
