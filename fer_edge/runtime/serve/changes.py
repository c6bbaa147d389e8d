"""Per-track label changes of one camera: a track that appears, changes label (after the smoother's hysteresis)
or disappears gives one change record."""

from __future__ import annotations

from typing import Any

from fer_edge.runtime.types import FrameResult

CHANGE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge serve: one label change of one track",
    "type": "object",
    "required": ["camera", "ts", "time", "frame", "track", "label", "previous", "confidence"],
    "additionalProperties": False,
    "properties": {
        "camera": {"type": "string"},
        "ts": {"type": "number"},
        "time": {"type": "number"},
        "frame": {"type": "integer", "minimum": 0},
        "track": {"type": "integer"},
        "label": {"type": ["string", "null"]},
        "previous": {"type": ["string", "null"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


class LabelChanges:
    """Remembers each live track's label; ``update(result)`` returns the changes since the previous result."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.labels: dict[int, str] = {}

    def update(self, result: FrameResult, ts: float) -> list[dict[str, Any]]:
        out = []
        seen = set()
        base = {"camera": self.camera, "ts": round(ts, 3), "time": round(float(result.time), 4),
                "frame": int(result.index)}
        for e in result.faces:
            seen.add(e.track)
            previous = self.labels.get(e.track)
            if previous != e.label:
                self.labels[e.track] = e.label
                out.append({**base, "track": int(e.track), "label": e.label, "previous": previous,
                            "confidence": round(min(1.0, max(0.0, float(e.confidence))), 5)})
        for track in [t for t in self.labels if t not in seen]:
            out.append({**base, "track": int(track), "label": None, "previous": self.labels.pop(track),
                        "confidence": 0.0})
        return out

    def reset(self, result_time: float, frame: int, ts: float) -> list[dict[str, Any]]:
        """Every live track ends (the source closed), as of that frame: their 'gone' changes."""
        return self.update(FrameResult(frame, result_time, ()), ts)
