"""The pipeline options `fer-edge run` and `fer-edge serve` share, defined once (defaults from RunOptions), and
the one parser of ``--size WxH``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from fer_edge.preprocess import ALIGN_MIN_ROLL
from fer_edge.runtime.backends import BACKENDS
from fer_edge.runtime.detectors import DETECTORS
from fer_edge.runtime.options import DEFAULTS as D

_SIZE = re.compile(r"(\d{1,5})[xX](\d{1,5})")


class CaptureSize(click.ParamType):
    """``WIDTHxHEIGHT`` (e.g. ``640x480``), both at least 1, as ``(width, height)``."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        m = _SIZE.fullmatch(str(value).strip())
        if not m or 0 in (int(m[1]), int(m[2])):
            self.fail(f"{value!r} is not WIDTHxHEIGHT with both at least 1, e.g. 640x480", param, ctx)
        return int(m[1]), int(m[2])


def capture_options(size: tuple[int, int] | None, cameras: bool) -> dict[str, int]:
    """The camera source's ``width``/``height`` for ``--size`` (which applies to cameras only)."""
    if size is None:
        return {}
    if not cameras:
        raise click.UsageError("--size applies to --camera only")
    return {"width": size[0], "height": size[1]}


_MODEL = (
    click.option("--model", "bundle", default=None, metavar="BUNDLE",
                 help="Bundle folder (default: the bundled model)."),
    click.option("--backend", type=click.Choice(["auto", *BACKENDS.names()]), default=D.backend, show_default=True),
    click.option("--threads", type=click.IntRange(1, 64), default=D.threads,
                 help="Inference threads (default: the backend's; serve: per camera)."),
)

_SHARED = (
    click.option("--precision", default=None, help="Artifact precision to pick (default: fastest the backend has)."),
    click.option("--detector", type=click.Choice(["auto", *DETECTORS.names()]), default=D.detector,
                 show_default=True),
    click.option("--detector-model", default=None, metavar="PATH",
                 help="Detector model file (.tflite / cascade .xml)."),
    click.option("--smooth", type=click.FloatRange(0.0, 0.99), default=D.smooth, show_default=True,
                 help="Per-track EMA weight of the past (0 = off)."),
    click.option("--every", type=click.IntRange(1, 100), default=D.every, show_default=True,
                 help="Detect every N frames, track in between."),
    click.option("--min-face", type=click.IntRange(0), default=D.min_face, show_default=True, metavar="PX"),
    click.option("--max-faces", type=click.IntRange(0), default=D.max_faces, show_default=True, metavar="K",
                 help="0 = no limit."),
    click.option("--size", type=CaptureSize(), default=None, metavar="WxH",
                 help="Camera capture size, e.g. 640x480 (cameras only)."),
    click.option("--latest/--all-frames", default=D.latest, show_default=True,
                 help="Camera/stream: process the newest frame, dropping those that arrive meanwhile; or every "
                      "frame."),
    click.option("--overlap/--no-overlap", default=D.overlap, show_default=True,
                 help="Classify a frame while the next is read and detected (faster on 2+ cores, one frame later)."),
    click.option("--flip-tta", is_flag=True, default=D.flip_tta,
                 help="Also classify each face's mirror image and average (2 inferences)."),
    click.option("--align/--no-align", default=D.align,
                 help=f"Rotate a face whose detector eye keypoints (BlazeFace) are tilted {ALIGN_MIN_ROLL:g} degrees "
                      "or more so the "
                      "eyes are level before classifying it (default: the model's crop rule; on unless its "
                      "manifest says \"align\": false)."),
)


def _add(options: tuple[Callable[..., Any], ...], command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --model, --backend and --threads."""
    return _add(_MODEL, command)


def pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared pipeline options (precision, detector, smoothing, detection cadence, face limits, capture,
    overlap, mirror averaging, eye alignment)."""
    return _add(_SHARED, command)
