"""What a frame source is: a registry entry that opens a spec (index, path, URL) and yields BGR frames."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fer_edge.errors import SourceError
from fer_edge.registry import Registry


class OpenCancelled(SourceError):
    """A stop was asked for (SIGTERM...) while a camera or stream was still being waited for."""

    def __init__(self, source: str) -> None:
        super().__init__(f"stopped while waiting for {source}")
        self.source = source


@dataclass(frozen=True)
class Frame:
    """One decoded frame: running index, seconds (media time for files, since opening for live sources)."""

    index: int
    time: float
    image: np.ndarray
    name: str = ""


@dataclass
class SourceStats:
    """Counters a source keeps while it runs."""

    frames: int = 0
    skipped: int = 0        # corrupt / undecodable frames or images, skipped
    reconnects: int = 0     # successful reopenings of a dropped camera or stream
    dropped: int = 0        # live frames not processed because a newer one arrived (LatestFrame)
    problems: list[str] = field(default_factory=list)

    def skip(self, why: str) -> None:
        self.skipped += 1
        if len(self.problems) < 20:
            self.problems.append(why)


class SourceBase:
    """Shared behaviour: ``with source:`` closes it; iterating yields ``Frame`` objects until the input ends."""

    kind: ClassVar[str] = ""
    live: ClassVar[bool] = False

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.stats = SourceStats()
        self._t0 = time.monotonic()

    @classmethod
    def accepts(cls, spec: str) -> bool:
        """Whether this kind of source handles ``spec`` (used when no kind is given)."""
        return False

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"

    def __enter__(self) -> SourceBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, image: np.ndarray, t: float | None = None, name: str = "") -> Frame:
        frame = Frame(self.stats.frames, time.monotonic() - self._t0 if t is None else t, image, name)
        self.stats.frames += 1
        return frame


def valid_image(img: np.ndarray | None) -> bool:
    """A decoded frame worth processing: uint8, 2-D or 3-D, non-empty."""
    return (img is not None and isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim in (2, 3)
            and img.size > 0 and min(img.shape[:2]) > 0)


SOURCES: Registry[type[SourceBase]] = Registry("source")


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings silenced for a moment (a failed open reports itself as one SourceError line)."""
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(previous)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """FFmpeg's own complaints (a refused connection, "moov atom not found") kept off the console for a moment,
    where fer-edge reports the problem itself."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
