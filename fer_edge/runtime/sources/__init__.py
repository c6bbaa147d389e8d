"""Frame sources, one module each, in one registry: camera index, video file, image, folder, network stream.

``open_source("0")`` (camera), ``open_source("clip.mp4")``, ``open_source("photos/")``,
``open_source("rtsp://host/stream")``; a wrong or missing source is one SourceError line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fer_edge.errors import SourceError
from fer_edge.runtime.sources import camera, images, stream, video  # noqa: F401  (register)
from fer_edge.runtime.sources.base import SOURCES, Frame, OpenCancelled, SourceBase, SourceStats
from fer_edge.runtime.sources.latest import LatestFrame

__all__ = ["SOURCES", "Frame", "LatestFrame", "OpenCancelled", "SourceBase", "SourceStats", "guess_kind",
           "open_source"]

# tried in this order when no kind is given; video comes last (any other existing file)
GUESS_ORDER = ("camera", "stream", "folder", "image", "video")


def guess_kind(spec: str) -> str:
    """The source kind a spec names (cheap: nothing is opened); SourceError when none accepts it."""
    kind = next((k for k in GUESS_ORDER if SOURCES.get(k).accepts(spec)), None)
    if kind is None:
        raise SourceError(f"source {spec} not found (not a camera index, URL, folder, image or video file)"
                          if not Path(spec).exists() else f"source {spec} is not a file or folder")
    return kind


def open_source(spec: str | int, kind: str | None = None, latest: bool = False, open_timeout: float = 0.0,
                stop: Any | None = None, notify: Callable[[str], None] | None = None, **options: Any) -> SourceBase:
    """Open a source by spec, guessing its kind unless ``kind`` names one. ``latest``: a live source (camera,
    stream) is read on a background thread and only its newest frame is handed out (see LatestFrame).
    Live sources only: ``open_timeout`` seconds of retrying a first open that fails (``notify`` hears of the
    wait), ``stop`` (an object with ``is_set()``/``wait(s)``) ends waits and reads early."""
    spec = str(spec)
    cls = SOURCES.get(kind or guess_kind(spec))
    if cls.live:
        options = {"open_timeout": open_timeout, "stop": stop, "notify": notify, **options}
    src = cls(spec, **options)
    return LatestFrame(src) if latest and src.live else src
