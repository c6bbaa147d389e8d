"""``RunOptions``: the settings of ``fer-edge run`` and ``fer_edge.runtime.run.run()`` with their defaults, in one
place (the command's options, ``serve``'s shared ones and the library function all read them from here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """How a source is run through the pipeline into outputs (see ``fer_edge.runtime.run.run``).

    Model: ``bundle`` (None = the bundled default), ``backend``, ``threads``, ``precision``, ``flip_tta``.
    Faces: ``detector`` (None = known boxes only), ``detector_model``, ``min_face`` (px; smaller faces are
    dropped), ``max_faces`` (the largest-scoring K per frame, 0 = no limit), ``every`` (detect every N frames),
    ``align`` (eye alignment of the crop, ``CropRule.cut``; None = the bundle's crop rule).
    Smoothing: ``smooth`` (per-track EMA weight of the past, 0 = off), ``margin`` (label hysteresis).
    Outputs: ``show``, ``save`` (video or image folder), ``json_out`` (file or ``-``), ``redact``, ``segment``
    (seconds per rolling file). Reading: ``max_frames``, ``latest`` (live sources: newest frame only),
    ``overlap`` (classify while the next frame is read), ``open_timeout`` (seconds of retrying a camera's or
    stream's first open).
    """

    bundle: str | Path | None = None
    backend: str = "auto"
    threads: int | None = None
    precision: str | None = None
    flip_tta: bool = False
    detector: str | None = "auto"
    detector_model: str | None = None
    min_face: int = 24
    max_faces: int = 8
    every: int = 1
    align: bool | None = None
    smooth: float = 0.5
    margin: float = 0.1
    show: bool = False
    save: str | Path | None = None
    json_out: str | Path | None = None
    redact: bool = False
    segment: float | None = None
    max_frames: int | None = None
    latest: bool = True
    overlap: bool = True
    open_timeout: float = 30.0

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes``; an unknown name is a TypeError listing the valid ones."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise TypeError(f"unknown run option(s) {', '.join(unknown)}; valid: {', '.join(FIELDS)}")
        return dataclasses.replace(self, **changes)

    def pipeline_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Pipeline.from_bundle`` these options set."""
        names = ("backend", "threads", "precision", "detector", "detector_model", "min_face", "max_faces", "every",
                 "smooth", "margin", "flip_tta", "align")
        return {n: getattr(self, n) for n in names}


FIELDS = tuple(f.name for f in dataclasses.fields(RunOptions))
DEFAULTS = RunOptions()
