"""Where results go: JSON lines, annotated images (``video_out``: annotated video). Every file is written beside its
target and renamed into place, or appended line by line in ``--segment`` mode; a write that fails raises
OutputError naming the output, so the run can drop that one and keep the others (``output_set``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from fer_edge.atomic import atomic_path, sweep_stale, write_bytes
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.output_errors import OutputError, StdoutClosed, output_error
from fer_edge.runtime.types import FrameResult
from fer_edge.runtime.video_out import SegmentedVideoSink, VideoSink

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v"})
IMAGE_OUT_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})  # encoded as named


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
    """JSON lines to a file or to stdout (``-``), flushed after every line.

    A file is written beside its target and renamed into place on ``close(ok=True)``; with ``append`` it is
    appended to in place instead (a torn last line, from a power cut, is cut off first) and fsync'ed every
    ``sync_every`` seconds and on close, so a live run loses at most the lines of the last interval.
    """

    def __init__(self, target: str | Path, append: bool = False, sync_every: float | None = None) -> None:
        self.target = str(target)
        self.label = f"--json {self.target}"
        self.append = bool(append)
        self.sync_every = sync_every
        self._stack = contextlib.ExitStack()
        self._synced = time.monotonic()
        self.lines = 0
        if self.target == "-":
            self.fh: TextIO = sys.stdout
            self.path = None
            return
        self.path = Path(self.target)
        try:
            if self.append:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _cut_torn_line(self.path)
                self.fh = self._stack.enter_context(self.path.open("a", encoding="utf-8", buffering=1))
            else:
                tmp = self._stack.enter_context(atomic_path(self.path))
                self.fh = self._stack.enter_context(tmp.open("w", encoding="utf-8", buffering=1))
        except OSError as exc:
            self._stack.close()
            raise output_error(self.label, exc) from None

    def write(self, result: FrameResult, name: str = "") -> None:
        try:
            self.fh.write(json.dumps(frame_record(result, name), separators=(",", ":")) + "\n")
            self.fh.flush()
            if self.sync_every is not None and time.monotonic() - self._synced >= self.sync_every:
                self.sync()
        except BrokenPipeError:
            if self.path is not None:
                raise output_error(self.label, BrokenPipeError()) from None
            _stdout_to_devnull()  # what is still buffered, and Python's flush at exit, go nowhere: no second error
            raise StdoutClosed(f"{self.label}: closed by its reader") from None
        except OSError as exc:
            raise output_error(self.label, exc) from None
        self.lines += 1

    def sync(self) -> None:
        """Push the written lines to the disk (fsync), not only to the OS."""
        if self.path is not None and not self.fh.closed:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        self._synced = time.monotonic()

    def close(self, ok: bool = True) -> None:
        """Finalize (rename into place) when ``ok``, else discard the partial file; appended lines always stay."""
        try:
            if self.append and ok and self.path is not None:
                self.sync()
            exc = None if ok or self.append else RuntimeError("run failed")
            self._stack.__exit__(type(exc) if exc else None, exc, None)
        except OSError as exc:
            raise output_error(self.label, exc) from None

    def describe(self) -> str:
        if self.path is None:
            return "stdout"
        return f"{self.path} ({self.lines} lines appended)" if self.append else str(self.path)


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _cut_torn_line(path: Path) -> None:
    """Truncate ``path`` after its last newline (a line half-written when the power went)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else size)
        fh.truncate(keep)


class ImageDirSink:
    """Annotated frames as image files in a folder, each written atomically. A named frame keeps its name and
    format (``face.png`` -> ``DIR/face.png``; a format OpenCV cannot encode gets ``.png`` added), so images of
    one folder never collide; unnamed frames are ``frame_000000.jpg``..."""

    def __init__(self, target: str | Path) -> None:
        self.path = Path(target)
        self.label = f"--save {target}"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(self.label, exc) from None
        sweep_stale(self.path)
        self.frames = 0
        self._used: set[str] = set()

    def name_for(self, name: str) -> str:
        """The output file name of a frame (unique within this run)."""
        base = Path(name).name if name else f"frame_{self.frames:06d}.jpg"
        if Path(base).suffix.lower() not in IMAGE_OUT_SUFFIXES:
            base += ".png"
        out, n = base, 1
        while out.lower() in self._used:
            n += 1
            out = f"{Path(base).stem}-{n}{Path(base).suffix}"
        self._used.add(out.lower())
        return out

    def write(self, image: np.ndarray, name: str = "", t: float | None = None) -> None:
        out = self.name_for(name)
        ok, buf = cv2.imencode(Path(out).suffix, image)
        if not ok:
            raise OutputError(f"{self.label}: cannot encode {Path(out).suffix} images")
        try:
            write_bytes(self.path / out, buf.tobytes(), sweep=False)
        except OSError as exc:
            raise output_error(self.label, exc) from None
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        pass

    def describe(self) -> str:
        return f"{self.path}/ ({self.frames} images)"


def open_sink(target: str | Path, fps: float = 30.0, segment: float | None = None) -> Any:
    """A video sink for a video suffix (rolling ``segment``-second files when given), else an image folder."""
    p = Path(target)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return SegmentedVideoSink(p, fps, segment) if segment else VideoSink(p, fps)
    if p.suffix and not p.is_dir():
        raise FerEdgeError(f"--save {target}: use a video file ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder")
    return ImageDirSink(p)
