"""Accuracy columns: labelled faces mapped by class name onto a bundle's classes, then accuracy, macro-F1,
per-class F1 and top-1 agreement between two artifacts' predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.bundle import Manifest
from fer_edge.errors import DataError
from fer_edge.labels import EMOTIONS, canonical


@dataclass(frozen=True)
class Faces:
    """Faces to benchmark on: uint8 images, canonical labels (-1 = none) and what was chosen, for the record."""

    images: np.ndarray
    labels: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.labels is not None and bool(np.any(self.labels >= 0))


def load_faces(path: str | Path, limit: int | None = None, seed: int = 0) -> Faces:
    """Faces of any dataset ``load_dataset`` reads: the official test split where there is one, labelled
    faces only (all faces when none is labelled), at most ``limit`` of them (a fixed random subset)."""
    from fer_edge.data import load_dataset

    ds = load_dataset(path)
    info: dict[str, Any] = {"path": str(path), "dataset": ds.name, "split": "all"}
    if ds.split is not None and np.any(ds.split == "test"):
        ds = ds.only_split("test")
        info["split"] = "test"
    else:
        info["note"] = "no official test split: every labelled face is used"
    if np.any(ds.labels >= 0):
        ds = ds.labelled()
    if limit is not None and len(ds) > limit:
        ds = ds.take(np.sort(np.random.default_rng(seed).permutation(len(ds))[:limit]))
        info["limit"] = limit
    info["faces"] = len(ds)
    labels = ds.labels if np.any(ds.labels >= 0) else None
    if labels is None:
        info["note"] = f"{ds.name} at {path} has no usable labels: accuracy columns stay empty"
    return Faces(ds.images, labels, info)


def synthetic_faces(n: int = 32, size: int = 48, seed: int = 0) -> Faces:
    """Random gray faces for latency when no data is given (accuracy stays empty)."""
    rng = np.random.default_rng(seed)
    return Faces(rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8), None,
                 {"dataset": "synthetic", "faces": n, "note": "no --data: random faces, accuracy not measured"})


def class_lut(manifest: Manifest) -> np.ndarray:
    """Canonical emotion index -> index into the manifest's classes (-1 where the model lacks the class)."""
    lut = np.full(len(EMOTIONS), -1, dtype=np.int64)
    for i, name in enumerate(manifest.classes):
        try:
            lut[EMOTIONS.index(canonical(name))] = i
        except DataError:
            continue  # a class outside the canonical space never matches a dataset label
    return lut


def targets(labels: np.ndarray, manifest: Manifest) -> tuple[np.ndarray, str]:
    """Canonical labels -> manifest class indices (-1 = unusable), and a note on faces dropped by class."""
    lut = class_lut(manifest)
    y = np.where(labels >= 0, lut[np.clip(labels, 0, None)], -1)
    lost = sorted({EMOTIONS[int(c)] for c in labels[(labels >= 0) & (y < 0)]})
    note = f"{int(np.sum((labels >= 0) & (y < 0)))} faces of classes the model lacks dropped ({', '.join(lost)})" \
        if lost else ""
    return y, note


def scores(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over classes present in ``y_true``), per-class F1 and support."""
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, np.clip(y_pred, 0, k - 1)), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "macro_f1": float(f1[present].mean()) if present.any() else None,
        "per_class_f1": {c: (float(f1[i]) if present[i] else None) for i, c in enumerate(classes)},
        "support": {c: int(support[i]) for i, c in enumerate(classes)},
    }


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of faces on which two artifacts give the same top-1 class."""
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"cannot compare {len(a)} and {len(b)} predictions")
    return float(np.mean(a == b))
