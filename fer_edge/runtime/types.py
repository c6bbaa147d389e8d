"""Typed results passed between runtime stages (new objects, never mutated in place)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, w, h) in frame pixels, detector score, optional 5-6 keypoints."""

    box: tuple[int, int, int, int]
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Expression:
    """A classified face: the detection, its track id, smoothed probabilities and the shown label."""

    face: Face
    track: int
    label: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline found in one frame."""

    index: int
    time: float
    faces: tuple[Expression, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    frame: np.ndarray | None = None
