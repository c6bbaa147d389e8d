"""Newest-frame-only reading of a live source: a background thread keeps reading the camera or stream, and the
consumer always gets the most recent frame. Without it a device slower than its camera falls further and further
behind (OpenCV and V4L2 queue frames; CAP_PROP_BUFFERSIZE is not honoured by every backend)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from fer_edge.runtime.sources.base import Frame, SourceBase


class LatestFrame(SourceBase):
    """Wraps a live source; frames that arrive while the consumer is busy are dropped and counted in
    ``stats.dropped``. Frame indices stay the source's own, so a gap shows what was dropped. An error of the
    source (a stream that stays down) reaches the consumer after the frames before it."""

    live = True

    def __init__(self, source: SourceBase) -> None:
        super().__init__(source.spec)
        self.source = source
        self.kind = source.kind
        self.stats = source.stats  # one set of counters, written by the reader thread (plain ints)
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._released = False
        self._release_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # fps, size... of the wrapped source
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def describe(self) -> str:
        return self.source.describe()

    def _read(self) -> None:
        try:
            for frame in self.source:
                with self._cond:
                    if self._frame is not None:
                        self.stats.dropped += 1
                    self._frame = frame
                    self._cond.notify()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()
            if self._stop.is_set():
                self._release()

    def frames(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name=f"fer-edge {self.kind} reader", daemon=True)
            self._thread.start()
        stop = getattr(self.source, "stop", None)  # a stop request ends a wait on a camera that went quiet
        while True:
            with self._cond:
                while not self._cond.wait_for(lambda: self._frame is not None or self._done, timeout=0.25):
                    if stop is not None and stop.is_set():
                        return
                frame, self._frame = self._frame, None
                if frame is None:  # done, nothing pending
                    if self._error is not None and not self._stop.is_set():
                        raise self._error
                    return
            yield frame

    def close(self) -> None:
        """Stop the reader thread, then release the source (safe to call twice)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
            if thread.is_alive():  # blocked in a read: the thread releases the source when that returns
                return
        self._release()

    def _release(self) -> None:
        with self._release_lock:
            if not self._released:
                self._released = True
                self.source.close()
