"""Per-stage timings and the end-of-run summary (a record first, text rendered from it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

STAGES = ("decode", "detect", "classify", "draw", "output")


class StageTimes:
    """Milliseconds per stage, one value per frame that ran the stage."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        self.ms.setdefault(stage, []).append(float(ms))

    def extend(self, stage: str, values: list[float]) -> None:
        self.ms.setdefault(stage, []).extend(float(v) for v in values)

    def table(self) -> dict[str, dict[str, float]]:
        """{stage: {mean, p50, p90, n}} for stages that ran, in STAGES order then the rest."""
        order = [s for s in STAGES if s in self.ms] + [s for s in self.ms if s not in STAGES]
        out = {}
        for s in order:
            v = np.asarray(self.ms[s], np.float64)
            if len(v):
                out[s] = {"mean": round(float(v.mean()), 3), "p50": round(float(np.median(v)), 3),
                          "p90": round(float(np.percentile(v, 90)), 3), "n": len(v)}
        return out


@dataclass
class Summary:
    """What a run did: counts, throughput, per-stage milliseconds, where its outputs went."""

    source: str = ""
    model: str = ""
    detector: str = ""
    frames: int = 0
    faces: int = 0
    frames_without_face: int = 0
    skipped: int = 0
    reconnects: int = 0
    dropped: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    stopped_by: str = "end of input"
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """A few human-readable lines."""
        lines = [f"{self.frames} frames, {self.faces} faces in {self.seconds:.2f} s: {self.fps:.1f} FPS "
                 f"({self.stopped_by}); {self.model}; detector {self.detector}"]
        if self.stages_ms:
            parts = [f"{s} {v['mean']:.2f}/{v['p50']:.2f}" for s, v in self.stages_ms.items()]
            lines.append("ms per frame (mean/p50): " + ", ".join(parts))
        counts = []
        if self.frames_without_face:
            counts.append(f"{self.frames_without_face} frames without a face")
        if self.skipped:
            counts.append(f"{self.skipped} corrupt frames skipped")
        if self.reconnects:
            counts.append(f"{self.reconnects} reconnects")
        if self.dropped:
            counts.append(f"{self.dropped} live frames dropped (newest frame first)")
        if counts:
            lines.append(", ".join(counts))
        lines += [f"{k}: {v}" for k, v in self.outputs.items()]
        lines += [f"{k}: {v}" for k, v in self.extra.items() if not isinstance(v, dict | list)]
        return "\n".join(lines)
