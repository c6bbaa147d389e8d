"""``run(...)``: a source through the pipeline into outputs, with a clean stop on end of input, ``max_frames``,
a stop signal (SIGINT, SIGTERM, SIGHUP: see ``lifecycle``) or a window's q/Esc; outputs are finalized and a summary
returned in every one of those cases. An output that fails is dropped, the others kept (``output_set``)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.lifecycle import StopRequest, stop_on_signals
from fer_edge.runtime.notify import notifier
from fer_edge.runtime.options import DEFAULTS, RunOptions
from fer_edge.runtime.output_set import Outputs, refuse_overlap
from fer_edge.runtime.overlay import draw as draw_overlay
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.sources import Frame, OpenCancelled, SourceBase, guess_kind, open_source
from fer_edge.runtime.stats import StageTimes, Summary
from fer_edge.runtime.types import Face, FrameResult

WINDOW = "fer-edge"
KnownFaces = Callable[[int, str], list[Face] | None]
OnResult = Callable[[Frame, FrameResult], None]


def run(source: str | int | None = None, *, camera: int | None = None, options: RunOptions | None = None,
        known_faces: KnownFaces | None = None, warmup: int = 0, draw: bool | None = None,
        echo: Callable[[str], None] | None = None, source_options: dict[str, Any] | None = None,
        pipeline: Pipeline | None = None, on_result: OnResult | None = None, stop: StopRequest | None = None,
        notify: Callable[[str], None] | None = None, **changes: Any) -> Summary:
    """Run a camera (``camera=0``) or a source (file, folder, image, URL) through the pipeline.

    ``options``: a ``RunOptions`` (default: ``fer-edge run``'s defaults); any of its fields may also be given as a
    keyword, e.g. ``run("clip.mp4", max_frames=10, json_out="out.jsonl")`` (an unknown name is a TypeError).
    Outputs: ``show`` (window), ``save`` (video file or image folder), ``json_out`` (file or ``-``); one that is
    the source or inside a source folder is refused. ``redact`` blurs faces in everything saved. ``segment``:
    video in rolling files of that many seconds and JSON lines appended in place (see ``SegmentedVideoSink``).
    ``open_timeout``: seconds to keep retrying the first open of a camera or stream (``notify`` hears about the
    wait). ``stop``: a StopRequest another thread may set; SIGINT/SIGTERM/SIGHUP set it in the main thread.
    ``known_faces(frame_index, name)`` returns boxes to use instead of detecting (None = detect;
    ``detector=None`` when all boxes are known). ``echo`` receives the summary text at the end, even when the
    source fails. ``on_result(frame, result)`` is called for every frame (untimed). ``latest``: a camera or
    stream hands over only its newest frame (frames that arrive while one is processed are dropped and counted);
    False processes every frame however far behind that falls. ``overlap``: classify each frame while the next
    is read and detected (see ``Pipeline.stream``); never for unrelated images. ``flip_tta``: classify each face
    and its mirror image and average them (see ``Classifier``). ``pipeline``: an existing Pipeline (the model
    and face options are then ignored). ``warmup``: frames processed but not timed; ``draw``: draw the overlay
    even when nothing shows or saves it (None = only then).
    """
    opts = (options or DEFAULTS).replace(**changes)
    max_frames, segment, show, save, json_out = opts.max_frames, opts.segment, opts.show, opts.save, opts.json_out
    if (camera is None) == (source is None):
        raise FerEdgeError("give exactly one of --camera N or --source FILE|DIR|URL")
    if max_frames is not None and max_frames < 1:
        raise FerEdgeError(f"--max-frames must be >= 1, got {max_frames}")
    if segment is not None and segment <= 0:
        raise FerEdgeError(f"--segment must be > 0 seconds, got {segment}")
    spec = str(camera) if camera is not None else str(source)
    kind = "camera" if camera is not None else guess_kind(spec)  # a missing source is named before the model loads
    refuse_overlap(spec, kind, save, json_out)
    if show:
        check_gui()
    with stop_on_signals(stop) as stop:
        if pipeline is None:
            pipeline = Pipeline.from_bundle(opts.bundle, **opts.pipeline_kwargs())
        try:
            src = open_source(spec, kind, latest=opts.latest, open_timeout=opts.open_timeout, stop=stop,
                              notify=notify, **(source_options or {}))
        except OpenCancelled as exc:  # a service stopped while its camera was still coming up
            summary = Summary(source=exc.source, model=pipeline.classifier.describe(),
                              stopped_by=f"{stop.reason()} while waiting for the source")
            if echo is not None:
                echo(summary.format())
            return summary
        notifier().ready(status=f"reading {src.describe()}")  # systemd Type=notify: started (no-op elsewhere)
        with src:
            return _loop(src, pipeline, stop, show=show, save=save, json_out=json_out, redact=opts.redact,
                         max_frames=max_frames, known_faces=known_faces, warmup=warmup, draw=draw, echo=echo,
                         on_result=on_result, overlap=opts.overlap, segment=segment)


def measure(source: str | int, bundle: str | Path | None = None, *, options: RunOptions | None = None,
            warmup: int = 5, draw: bool = True, **changes: Any) -> dict[str, Any]:
    """Benchmark the pipeline end to end on a source: {frames, fps, seconds, stages_ms{stage: mean/p50/p90}, ...}.

    ``options`` / ``changes`` as for ``run`` (smoothing is always off). The first ``warmup`` frames are processed
    but not timed. ``draw`` includes drawing the overlay.
    """
    opts = (options or DEFAULTS).replace(**({"bundle": bundle} if bundle is not None else {}), **changes)
    opts = opts.replace(smooth=0.0)
    summary = run(source, options=opts, warmup=warmup, draw=draw)
    return {"frames": summary.frames, "fps": summary.fps, "seconds": summary.seconds, "faces": summary.faces,
            "stages_ms": summary.stages_ms, "model": summary.model, "detector": summary.detector,
            "threads": opts.threads, "every": opts.every}


def _loop(src: SourceBase, pipe: Pipeline, stop: StopRequest, *, show: bool, save: str | Path | None,
          json_out: str | Path | None, redact: bool, max_frames: int | None, known_faces: KnownFaces | None,
          warmup: int, draw: bool | None, echo: Callable[[str], None] | None, on_result: OnResult | None,
          overlap: bool = True, segment: float | None = None) -> Summary:
    summary = Summary(source=src.describe(), model=pipe.classifier.describe(),
                      detector=getattr(pipe.detector, "name", "none (known boxes)"))
    times = StageTimes()
    independent = src.kind in ("image", "folder")  # unrelated images: no tracking or smoothing across them
    outputs: Outputs | None = None
    watchdog = notifier()
    ok = False
    fps_shown = 0.0
    timed_frames, t_start = 0, None
    try:
        outputs = Outputs(save, json_out, getattr(src, "fps", 0.0) or 30.0, segment)
        consumers = bool(show or on_result is not None)

        def inputs() -> Iterator[tuple[tuple[Frame, float], np.ndarray, int, float, list[Face] | None]]:
            frames, read = iter(src), 0
            while not stop.is_set():
                if max_frames is not None and read >= max_frames:
                    summary.stopped_by = f"--max-frames {max_frames}"
                    return
                t0 = time.perf_counter()
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                decode_ms = (time.perf_counter() - t0) * 1e3
                read += 1
                if independent:
                    pipe.reset()
                boxes = known_faces(frame.index, frame.name) if known_faces is not None else None
                yield (frame, decode_ms), frame.image, frame.index, frame.time, boxes

        prev_end = time.perf_counter()
        for (frame, decode_ms), result in pipe.stream(inputs(), overlap=overlap and not independent):
            t2 = time.perf_counter()
            inst = 1.0 / max(t2 - prev_end, 1e-6)
            fps_shown = inst if fps_shown == 0 else 0.9 * fps_shown + 0.1 * inst
            drawing = bool(show or outputs.video is not None) if draw is None else draw
            shown = saved = None
            if drawing:
                shown = draw_overlay(frame.image, result, fps_shown)
                saved = draw_overlay(frame.image, result, fps_shown, redact_faces=True) if redact else shown
            t3 = time.perf_counter()
            if saved is not None:
                outputs.write_image(saved, frame.name, frame.time)
            outputs.write_result(result, frame.name)
            if show and shown is not None:
                cv2.imshow(WINDOW, shown)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    summary.stopped_by = "window closed (q)"
                    stop.set()
            if outputs.stdout_closed and not stop.is_set():  # `| head -1`: stop quietly, like a Unix tool
                summary.stopped_by = "stdout closed by its reader"
                stop.set()
            if outputs.failed and not outputs and not consumers and not stop.is_set():
                summary.stopped_by = "every output failed"
                stop.set()
            watchdog.tick()
            t4 = time.perf_counter()
            if on_result is not None:
                on_result(frame, result)
            summary.frames += 1
            summary.faces += len(result.faces)
            summary.frames_without_face += not result.faces
            period, prev_end = (t4 - prev_end) * 1e3, t4
            if summary.frames <= warmup:
                continue
            if t_start is None:
                t_start = t4 - period / 1e3
            timed_frames += 1
            times.add("decode", decode_ms)
            for stage, ms in result.timings_ms.items():
                times.add(stage, ms)
            if drawing:
                times.add("draw", (t3 - t2) * 1e3)
            if outputs or show:
                times.add("output", (t4 - t3) * 1e3)
            times.add("total", period)
        if stop.is_set() and summary.stopped_by == "end of input":
            summary.stopped_by = stop.reason()
        ok = summary.frames > 0 or not stop.is_set()  # stopped before any frame: the previous outputs stay
    except KeyboardInterrupt:  # a second stop signal while a read or a frame was stuck
        summary.stopped_by = stop.reason() if stop.signal_name not in (None, "SIGINT") else "interrupted (SIGINT)"
        ok = summary.frames > 0
    except Exception as exc:  # e.g. a stream that dropped for good: keep what was written, then report
        summary.stopped_by = f"error: {exc}" if isinstance(exc, FerEdgeError) else f"error: {type(exc).__name__}"
        ok = summary.frames > 0
        raise
    finally:
        stop.finalizing = True
        watchdog.stopping()
        if outputs is not None:
            summary.outputs = outputs.close(ok=ok)
        if show:
            _close_windows()
        elapsed = (time.perf_counter() - t_start) if t_start is not None else 0.0
        summary.seconds = round(elapsed, 3)
        summary.fps = round(timed_frames / elapsed, 2) if elapsed > 0 else 0.0
        summary.stages_ms = times.table()
        summary.skipped = src.stats.skipped
        summary.reconnects = src.stats.reconnects
        summary.dropped = src.stats.dropped
        summary.problems = list(src.stats.problems)
        if echo is not None:
            echo(summary.format())
    failed = outputs.error() if outputs is not None else None
    if failed is not None:
        raise failed
    return summary


def check_gui() -> None:
    """Fail with one line when ``--show`` cannot open a window (headless OpenCV, no display)."""
    gui = next((ln.split(":", 1)[1].strip() for ln in cv2.getBuildInformation().splitlines()
                if ln.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE"):
        raise FerEdgeError("--show needs OpenCV with a GUI, this one is headless: pip install opencv-python "
                           "(in place of opencv-python-headless), or use --save / --json")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FerEdgeError("--show needs a display (DISPLAY is not set); use --save or --json")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise FerEdgeError(f"--show cannot open a window ({str(exc).strip()[:80]})") from None


def _close_windows() -> None:
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass


def blank_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """A mid-grey BGR frame (handy for warm-up and tests)."""
    return np.full((height, width, 3), 128, np.uint8)
