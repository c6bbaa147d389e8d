"""The pipeline options `fer-edge run` and `fer-edge serve` share, defined once (defaults from RunOptions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from fer_edge.runtime.detectors import DETECTORS
from fer_edge.runtime.options import DEFAULTS as D

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
    click.option("--size", default=None, metavar="WxH", help="Camera capture size, e.g. 640x480 (cameras only)."),
    click.option("--latest/--all-frames", default=D.latest, show_default=True,
                 help="Camera/stream: process the newest frame, dropping those that arrive meanwhile; or every "
                      "frame."),
)


def pipeline_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared pipeline options (precision, detector, smoothing, detection cadence, face limits, capture)."""
    for option in reversed(_SHARED):
        command = option(command)
    return command
