"""A picture of a dataset: one row of sample faces per class, the class name on the left (OpenCV only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import write_bytes
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import EMOTIONS, display

LABEL_WIDTH = 130
PAD = 2


def sample_grid(ds: FaceDataset, per_class: int = 8, cell: int = 96, seed: int = 0) -> np.ndarray:
    """BGR uint8 image: for each class of ``ds``, up to ``per_class`` random faces of that class."""
    if per_class < 1:
        raise DataError("--per-class must be at least 1")
    rng = np.random.default_rng(seed)
    rows = []
    for name in ds.classes:
        idx = np.flatnonzero(ds.labels == EMOTIONS.index(name))
        pick = rng.choice(idx, size=min(per_class, idx.size), replace=False) if idx.size else idx
        row = np.full((cell + 2 * PAD, LABEL_WIDTH + per_class * (cell + PAD) + PAD, 3), 255, np.uint8)
        text = f"{display(name)} ({idx.size:,})"
        cv2.putText(row, text, (6, cell // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j, i in enumerate(sorted(pick)):
            face = ds.images[i]
            face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR if face.shape[2] == 1 else cv2.COLOR_RGB2BGR)
            face = cv2.resize(face, (cell, cell), interpolation=cv2.INTER_NEAREST if face.shape[0] < cell
                              else cv2.INTER_AREA)
            x = LABEL_WIDTH + PAD + j * (cell + PAD)
            row[PAD : PAD + cell, x : x + cell] = face
        rows.append(row)
    if not rows:
        raise DataError(f"{ds.root}: no classes to show")
    return np.vstack(rows)


def save_grid(ds: FaceDataset, out: str | Path, per_class: int = 8, cell: int = 96, seed: int = 0) -> Path:
    """Write ``sample_grid`` to ``out`` (format from its suffix, e.g. .png or .jpg), atomically."""
    out = Path(out)
    try:
        ok, data = cv2.imencode(out.suffix or ".png", sample_grid(ds, per_class, cell, seed))
    except cv2.error:
        ok = False
    if not ok:
        raise DataError(f"{out}: cannot encode an image with suffix {out.suffix!r}; use .png or .jpg")
    return write_bytes(out, data.tobytes())
