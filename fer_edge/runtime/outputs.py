"""Where results go: an annotated video (atomic: temp file renamed at the end), annotated images, JSON lines."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from fer_edge.atomic import atomic_path, write_bytes
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.types import FrameResult

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v"})
FOURCC = {".avi": "MJPG"}  # everything else: mp4v

# One JSON line per frame. "name" appears for image and folder sources.
FRAME_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge run: one frame",
    "type": "object",
    "required": ["time", "frame", "faces"],
    "additionalProperties": False,
    "properties": {
        "time": {"type": "number"},
        "frame": {"type": "integer", "minimum": 0},
        "name": {"type": "string"},
        "faces": {"type": "array", "items": {
            "type": "object",
            "required": ["box", "track", "label", "confidence", "probabilities"],
            "additionalProperties": False,
            "properties": {
                "box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4},
                "track": {"type": "integer"},
                "label": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        }},
    },
}


def frame_record(result: FrameResult, name: str = "") -> dict[str, Any]:
    """The JSON-lines record of one frame (see FRAME_SCHEMA)."""
    rec: dict[str, Any] = {"time": round(float(result.time), 4), "frame": int(result.index)}
    if name:
        rec["name"] = name
    rec["faces"] = [{
        "box": [int(v) for v in e.face.box], "track": int(e.track), "label": e.label,
        "confidence": round(min(1.0, max(0.0, float(e.confidence))), 5),
        "probabilities": {k: round(float(v), 5) for k, v in e.probabilities.items()},
    } for e in result.faces]
    return rec


class JsonLinesSink:
    """JSON lines to a file (written beside it, renamed into place on close) or to stdout (``-``, flushed per line)."""

    def __init__(self, target: str | Path) -> None:
        self.target = str(target)
        self._stack = contextlib.ExitStack()
        if self.target == "-":
            self.fh: TextIO = sys.stdout
            self.path = None
        else:
            self.path = Path(self.target)
            tmp = self._stack.enter_context(atomic_path(self.path))
            self.fh = self._stack.enter_context(tmp.open("w", encoding="utf-8"))
        self.lines = 0

    def write(self, result: FrameResult, name: str = "") -> None:
        self.fh.write(json.dumps(frame_record(result, name), separators=(",", ":")) + "\n")
        if self.path is None:
            self.fh.flush()
        self.lines += 1

    def close(self, ok: bool = True) -> None:
        """Finalize (rename into place) when ``ok``, else discard the partial file."""
        exc = None if ok else RuntimeError("run failed")
        self._stack.__exit__(type(exc) if exc else None, exc, None)

    def describe(self) -> str:
        return "stdout" if self.path is None else str(self.path)


class VideoSink:
    """Annotated frames into a video file; the size comes from the first frame. Written to a temp file beside
    the target and renamed into place on ``close(ok=True)``."""

    def __init__(self, target: str | Path, fps: float = 30.0) -> None:
        self.path = Path(target)
        self.fps = float(fps) if fps and 1 <= fps <= 240 else 30.0
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "") -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self.writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                self.close(ok=False)
                raise FerEdgeError(f"cannot write video {self.path} (no encoder for {self.path.suffix} here)")
            self.size = (w, h)
        if (w, h) != self.size:  # folders of mixed sizes: fit into the first frame's size
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        good = ok and self.frames > 0
        exc = None if good else RuntimeError("no frames")
        self._stack.__exit__(type(exc) if exc else None, exc, None)

    def describe(self) -> str:
        return str(self.path) if self.frames else f"{self.path} (not written: no frames)"


class ImageDirSink:
    """Annotated frames as JPEG (or PNG) files in a folder, each written atomically."""

    def __init__(self, target: str | Path, ext: str = ".jpg") -> None:
        self.path = Path(target)
        self.path.mkdir(parents=True, exist_ok=True)
        self.ext = ext
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "") -> None:
        stem = Path(name).stem if name else f"frame_{self.frames:06d}"
        ok, buf = cv2.imencode(self.ext, image)
        if not ok:
            raise FerEdgeError(f"cannot encode {self.ext} images")
        write_bytes(self.path / f"{stem}{self.ext}", buf.tobytes())
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        pass

    def describe(self) -> str:
        return f"{self.path}/ ({self.frames} images)"


def open_sink(target: str | Path, fps: float = 30.0) -> VideoSink | ImageDirSink:
    """A video sink for a video suffix, else an image folder."""
    p = Path(target)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSink(p, fps)
    if p.suffix and not p.is_dir():
        raise FerEdgeError(f"--save {target}: use a video file ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder")
    return ImageDirSink(p)
