"""Annotated video out: one file, or rolling segments. ``cv2.VideoWriter.write`` reports no errors (a full disk
leaves a file with no moov atom and says nothing), so the sink checks the disk after every frame and reads the
finished file back before renaming it into place; either failure is an OutputError, never "saved"."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import atomic_path, sweep_stale
from fer_edge.runtime.output_errors import OutputError, output_error
from fer_edge.runtime.sources.base import quiet_opencv, quiet_stderr

FOURCC = {".avi": "MJPG"}  # everything else: mp4v
MIN_FREE_BYTES = 64 * 1024  # less than this left: the muxer's next buffered write (32 KiB) may fail unseen


class VideoSink:
    """Annotated frames into a video file; the size comes from the first frame. Written to a temp file beside
    the target, checked, and renamed into place on ``close(ok=True)``."""

    def __init__(self, target: str | Path, fps: float = 30.0) -> None:
        self.path = Path(target)
        self.label = f"--save {target}"
        self.fps = float(fps) if fps and 1 <= fps <= 240 else 30.0
        self._stack = contextlib.ExitStack()
        try:
            self._tmp = self._stack.enter_context(atomic_path(self.path))
        except OSError as exc:
            raise output_error(self.label, exc) from None
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "", t: float | None = None) -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        if self.writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self.writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                self.close(ok=False)
                raise OutputError(f"cannot write video {self.path} (no encoder for {self.path.suffix} here)")
            self.size = (w, h)
        if (w, h) != self.size:  # folders of mixed sizes: fit into the first frame's size
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        with quiet_opencv():
            self.writer.write(image)
        self.frames += 1
        check_disk(self._tmp, self.label)

    def close(self, ok: bool = True) -> None:
        """Finalize when ``ok`` and frames were written, after reading the file back; else discard it. A file
        that does not read back is discarded and raises OutputError."""
        if self.writer is not None:
            with quiet_opencv():
                self.writer.release()
            self.writer = None
        good = ok and self.frames > 0
        why = validate_video(self._tmp, self.frames) if good else None
        exc: BaseException | None = None if good and why is None else RuntimeError("not kept")
        try:
            self._stack.__exit__(type(exc) if exc else None, exc, None)
        except OSError as err:
            raise output_error(self.label, err) from None
        if why is not None:
            raise OutputError(f"{self.label}: {why}; nothing saved")

    def describe(self) -> str:
        return str(self.path) if self.frames else f"{self.path} (not written: no frames)"


class SegmentedVideoSink:
    """Rolling video files ``STEM-00000.SUFFIX``, ``STEM-00001.SUFFIX``... of ``segment`` seconds (frame time:
    media time for files, time since opening for live sources), each finalized as soon as it ends, so a power
    cut loses at most the open one. Numbering continues after the segments already there (a restarted service
    never overwrites). ``on_segment(path)`` is called after each segment is finalized."""

    def __init__(self, target: str | Path, fps: float = 30.0, segment: float = 60.0,
                 on_segment: Callable[[Path], None] | None = None) -> None:
        if not segment or segment <= 0:
            raise OutputError(f"--segment must be > 0 seconds, got {segment}")
        self.base = Path(target)
        self.label = f"--save {target}"
        self.fps = fps
        self.segment = float(segment)
        self.on_segment = on_segment
        self._pattern = rf"{re.escape(self.base.stem)}-\d{{5,}}{re.escape(self.base.suffix)}"
        try:
            self.base.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(self.label, exc) from None
        sweep_stale(self.base.parent, name_regex=self._pattern)
        self.index = next_segment_index(self.base)
        self.current: VideoSink | None = None
        self.started: float = 0.0
        self.done: list[Path] = []
        self.frames = 0

    def path_of(self, index: int) -> Path:
        return self.base.with_name(f"{self.base.stem}-{index:05d}{self.base.suffix}")

    def write(self, image: np.ndarray, name: str = "", t: float | None = None) -> None:
        t = self.frames / (self.fps or 30.0) if t is None else float(t)
        if self.current is not None and t - self.started >= self.segment:
            self._finish()
        if self.current is None:
            self.current = VideoSink(self.path_of(self.index), self.fps)
            self.started = t
        self.current.write(image, name)
        self.frames += 1

    def _finish(self, ok: bool = True) -> None:
        current, self.current = self.current, None
        if current is None:
            return
        current.close(ok=ok)
        if ok and current.frames:
            self.done.append(current.path)
            self.index += 1
            if self.on_segment is not None:
                self.on_segment(current.path)

    def close(self, ok: bool = True) -> None:
        self._finish(ok)

    def describe(self) -> str:
        if not self.done:
            return f"{self.label.split(' ', 1)[1]} (not written: no frames)"
        span = self.done[0].name if len(self.done) == 1 else f"{self.done[0].name} .. {self.done[-1].name}"
        return f"{len(self.done)} segments in {self.base.parent}: {span}"


def next_segment_index(base: Path) -> int:
    """One past the highest ``STEM-NNNNN.SUFFIX`` beside ``base`` (0 when there is none)."""
    pat = re.compile(rf"^{re.escape(base.stem)}-(\d{{5,}}){re.escape(base.suffix)}$")
    try:
        found = [int(m.group(1)) for p in base.parent.iterdir() if (m := pat.match(p.name))]
    except OSError:
        found = []
    return max(found) + 1 if found else 0


def check_disk(path: Path, label: str) -> None:
    """OutputError when the file being written is gone, its file system is read-only or (nearly) full."""
    try:
        os.stat(path)
        st = os.statvfs(path.parent) if hasattr(os, "statvfs") else None
    except OSError as exc:
        raise output_error(label, exc) from None
    if st is None:
        return
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        raise OutputError(f"{label}: read-only file system")
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    free = (st.f_bfree if root else st.f_bavail) * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{label}: no space left on device ({free // 1024} KiB free)")


def validate_video(path: Path, frames: int) -> str | None:
    """Why a written video is unusable (None when its frame count matches and its first and last frames decode)."""
    with quiet_opencv(), quiet_stderr():
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return "the written file does not read back (disk full or an I/O error)"
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if count > 0 and abs(count - frames) > max(1, frames // 100):
                return f"the written file holds {count} of {frames} frames (disk full or an I/O error)"
            ok, _ = cap.read()
            if ok and frames > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, (count or frames) - 1)
                ok, _ = cap.read()
            return None if ok else "the written file has frames that do not decode (disk full or an I/O error)"
        finally:
            cap.release()


def readable_frames(path: str | os.PathLike[str]) -> int:
    """Frames OpenCV actually decodes from the video at ``path`` (0 when there is no such file)."""
    if not Path(path).is_file():
        return 0
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n
