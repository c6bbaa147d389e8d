"""One camera's worker thread: open the source, iterate the pipeline's stream, keep the newest result and image,
and when the source fails, report it and retry with doubling waits without touching the other cameras."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.overlay import draw as draw_overlay
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.serve.changes import LabelChanges
from fer_edge.runtime.serve.options import CameraSpec, ServeOptions, redact
from fer_edge.runtime.sources import Frame, SourceBase, open_source
from fer_edge.runtime.types import Face, FrameResult

log = logging.getLogger("fer_edge.serve")
# (worker, frame, result or None when only changes are reported, label changes)
OnResult = Callable[["CameraWorker", Frame, FrameResult | None, list[dict[str, Any]]], None]
EMA = 0.1  # weight of the newest frame in the running stage means
FPS_FRAMES = 32  # frames per second over the last this many frames
IMAGE_FPS = 1.0  # pace of image and folder sources


class CameraWorker:
    """``CameraWorker(spec, pipeline, options, on_result, stop).start()``; the state is read by other threads
    (plain attributes written only by this thread; ``snapshot()`` copies them)."""

    def __init__(self, spec: CameraSpec, pipeline: Pipeline, options: ServeOptions, on_result: OnResult,
                 stop: threading.Event) -> None:
        self.id = spec.id
        self.spec = spec
        self.pipeline = pipeline
        self.options = options
        self.on_result = on_result
        self.stop = stop
        self.source = spec.shown
        self.state = "starting"
        self.error: str | None = None
        self.frames = 0
        self.faces_now = 0
        self.faces_total = 0
        self.fps = 0.0
        self.stages_ms: dict[str, float] = {}
        self.failures = 0     # opens or runs that failed
        self.reopens = 0      # successful opens after a failure
        self.loops = 0        # files played again from the start
        self.last_frame_t: float | None = None
        self._times: deque[float] = deque(maxlen=FPS_FRAMES)
        self.changes = LabelChanges(spec.id)
        self._src: SourceBase | None = None
        self._dropped = 0     # counters of closed sources
        self._reconnects = 0
        self._latest: tuple[int, Frame, FrameResult] | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._jpeg_t = 0.0
        self._jpeg_lock = threading.Lock()
        self.encode_ms = 0.0
        self._thread: threading.Thread | None = None

    # --- thread -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"fer-edge serve {self.id}", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Open, stream, and on failure wait (1 s doubling up to ``retry_max_s``) and open again, until stopped."""
        wait = 1.0
        while not self.stop.is_set():
            before = self.frames
            try:
                self._run_once()
            except FerEdgeError as exc:
                message = str(exc)
            except Exception as exc:  # a camera's failure, whatever it is, must not end the server
                message = f"{type(exc).__name__}: {exc}"
            else:
                if self.stop.is_set():
                    break
                if not self.options.loop:
                    self.state = "ended"
                    log.info("%s: %s ended", self.id, self.source)
                    return
                self.loops += 1
                continue
            if self.stop.is_set():
                break
            if self.frames > before:
                wait = 1.0
            self.failures += 1
            self.state, self.error = "retrying", redact(message)
            log.warning("%s: %s; retrying in %.0f s", self.id, self.error, wait)
            if self.stop.wait(wait):
                break
            wait = min(wait * 2, self.options.retry_max_s)
        self.state = "stopped"

    def _run_once(self) -> None:
        spec, opts = self.spec, self.options
        extra = opts.source_options if spec.kind == "camera" else {}
        src = open_source(spec.spec, spec.kind, latest=opts.latest, **extra)
        try:
            self._src = src
            self.source = redact(src.describe())
            if self.state == "retrying":  # open again after a failure
                self.reopens += 1
            self.pipeline.reset()
            self._times.clear()
            self.state, self.error = "running", None
            independent = src.kind in ("image", "folder")
            for (frame, decode_ms), result in self.pipeline.stream(self._inputs(src, independent),
                                                                   overlap=opts.overlap and not independent):
                self._record(frame, result, decode_ms)
        finally:
            self._src = None
            self._dropped += src.stats.dropped
            self._reconnects += src.stats.reconnects
            src.close()
            last = self._latest
            gone = self.changes.reset(last[2].time, last[2].index, time.time()) if last is not None else []
            if gone and last is not None:  # every track ended with the source: changes only, no result
                self.on_result(self, last[1], None, gone)

    def _inputs(self, src: SourceBase, independent: bool
                ) -> Iterator[tuple[tuple[Frame, float], np.ndarray, int, float, list[Face] | None]]:
        period = 0.0
        if self.options.pace and not src.live:
            fps = float(getattr(src, "fps", 0.0) or 0.0)
            period = 1.0 / fps if 1 <= fps <= 240 else (1.0 / IMAGE_FPS if independent else 1.0 / 30)
        frames, n, t0 = iter(src), 0, time.monotonic()
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            decode_ms = (time.perf_counter() - t) * 1e3
            if period:
                delay = t0 + n * period - time.monotonic()
                n += 1
                if delay > 0 and self.stop.wait(delay):
                    return
            if independent:
                self.pipeline.reset()
            yield (frame, decode_ms), frame.image, frame.index, frame.time, None

    def _record(self, frame: Frame, result: FrameResult, decode_ms: float) -> None:
        now = time.monotonic()
        self._times.append(now)
        if len(self._times) > 1 and now > self._times[0]:
            self.fps = (len(self._times) - 1) / (now - self._times[0])
        self.last_frame_t = now
        self.frames += 1
        self.faces_now = len(result.faces)
        self.faces_total += len(result.faces)
        for stage, ms in {"decode": decode_ms, **result.timings_ms}.items():
            old = self.stages_ms.get(stage)
            self.stages_ms[stage] = ms if old is None else (1 - EMA) * old + EMA * ms
        version = self._latest[0] + 1 if self._latest is not None else 0
        self._latest = (version, frame, result)
        self.on_result(self, frame, result, self.changes.update(result, time.time()))

    # --- read by the server ---------------------------------------------------------------------------------
    def healthy(self, stale_s: float) -> bool:
        """Delivering frames: running, with a frame in the last ``stale_s`` seconds."""
        t = self.last_frame_t
        return self.state == "running" and t is not None and time.monotonic() - t < stale_s

    @property
    def dropped(self) -> int:
        src = self._src
        return self._dropped + (src.stats.dropped if src is not None else 0)

    @property
    def reconnects(self) -> int:
        src = self._src
        return self._reconnects + (src.stats.reconnects if src is not None else 0) + self.reopens

    def snapshot(self, stale_s: float) -> dict[str, Any]:
        """The camera's status as plain data (no credentials)."""
        age = None if self.last_frame_t is None else round(time.monotonic() - self.last_frame_t, 3)
        return {"camera": self.id, "source": self.source, "state": self.state, "ok": self.healthy(stale_s),
                "error": self.error, "frames": self.frames, "fps": round(self.fps, 2), "faces": self.faces_now,
                "last_frame_age_s": age, "dropped": self.dropped, "reconnects": self.reconnects,
                "failures": self.failures, "loops": self.loops,
                "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()}}

    def jpeg(self, max_age: float, quality: int = 80, redact_faces: bool = False) -> tuple[int, bytes] | None:
        """(version, JPEG) of the newest annotated frame, encoded at most once per ``max_age`` seconds however
        many viewers ask (they share it); None before the first frame."""
        with self._jpeg_lock:
            latest = self._latest
            if latest is None:
                return None
            cached = self._jpeg
            if cached is not None and (cached[0] == latest[0] or time.monotonic() - self._jpeg_t < max_age):
                return cached
            t = time.perf_counter()
            version, frame, result = latest
            image = draw_overlay(frame.image, result, self.fps, redact_faces=redact_faces)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            if not ok:
                return cached
            self._jpeg, self._jpeg_t = (version, buf.tobytes()), time.monotonic()
            ms = (time.perf_counter() - t) * 1e3
            self.encode_ms = ms if self.encode_ms == 0 else (1 - EMA) * self.encode_ms + EMA * ms
            return self._jpeg
