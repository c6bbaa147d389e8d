"""Drawing results on frames: box, "Happiness, 89.98%", a small probability bar per class, FPS; and redaction."""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.labels import ALIASES
from fer_edge.runtime.types import FrameResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR colour per canonical emotion; other labels get grey
COLORS = {"neutral": (200, 200, 200), "happiness": (60, 200, 60), "surprise": (0, 200, 255),
          "sadness": (200, 120, 40), "anger": (40, 40, 230), "disgust": (40, 140, 90), "fear": (180, 60, 180),
          "contempt": (90, 90, 160)}


def display_name(label: str) -> str:
    return ALIASES.get(label.lower(), label).capitalize()


def color_of(label: str) -> tuple[int, int, int]:
    return COLORS.get(ALIASES.get(label.lower(), ""), (160, 160, 160))


def redact(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A copy with each box pixelated and blurred beyond recognition."""
    out = image.copy()
    h, w = out.shape[:2]
    for x, y, bw, bh in boxes:
        x1, y1, x2, y2 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = out[y1:y2, x1:x2]
        small = cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR),
                                             (0, 0), max(1.0, (x2 - x1) / 12))
    return out


def draw(image: np.ndarray, result: FrameResult, fps: float | None = None, redact_faces: bool = False,
         bars: bool = True) -> np.ndarray:
    """A BGR copy of ``image`` with the results drawn on it (faces blurred first when ``redact_faces``)."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if redact_faces:
        out = redact(out, [e.face.box for e in result.faces])
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 360))
    if bars:  # first, so that every label is drawn over any neighbour's bars
        for e in result.faces:
            if e.probabilities:
                x, y, bw, bh = e.face.box
                rows = len(e.probabilities) * 4
                _bars(out, e.probabilities, max(0, x), y + bh + 3 if y + bh + 3 + rows <= h else max(0, y + 2),
                      length=max(24, min(80, bw // 2)))
    for e in result.faces:
        x, y, bw, bh = e.face.box
        col = color_of(e.label)
        cv2.rectangle(out, (x, y), (x + bw, y + bh), col, thick)
        text = f"{display_name(e.label)}, {100 * e.confidence:.2f}%"
        scale = 0.45 * thick
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        ty = y - 4 if y - th - 6 >= 0 else y + th + 4
        cv2.rectangle(out, (x, ty - th - 3), (x + tw + 4, ty + base - 1), col, -1)
        cv2.putText(out, text, (x + 2, ty - 1), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:5.1f} FPS", (8, 20), FONT, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, f"{fps:5.1f} FPS", (8, 20), FONT, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _bars(out: np.ndarray, probs: dict[str, float], x: int, y: int, length: int = 60, row: int = 4) -> None:
    """A tiny horizontal bar per class on a dark strip (longest = most likely), coloured by class."""
    h, w = out.shape[:2]
    x2 = min(w - 1, x + length)
    cv2.rectangle(out, (x, y), (x2, min(h - 1, y + row * len(probs))), (40, 40, 40), -1)
    for i, (label, p) in enumerate(probs.items()):
        y1 = y + i * row + 1
        if y1 + row - 2 >= h:
            break
        cv2.rectangle(out, (x, y1), (min(x2, x + max(1, int(length * p))), y1 + row - 2), color_of(label), -1)
