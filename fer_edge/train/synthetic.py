"""Synthetic 'faces' whose class is the orientation of a bright bar put at a random place in the left or right
half: a dataset a model learns in seconds, with a known answer for where Grad-CAM should look.
For tests and smoke runs, never for reported numbers."""

from __future__ import annotations

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.labels import EMOTIONS


def bar_faces(n: int, classes: tuple[str, ...] = ("neutral", "happiness"), size: int = 32, subjects: int = 0,
              split: tuple[float, float] | None = None, seed: int = 0,
              name: str = "synthetic") -> tuple[FaceDataset, np.ndarray]:
    """``n`` gray (size x size) images of noise plus one bright bar; the bar's angle (180 deg / k steps) is the
    class, its centre is random inside a random half. Returns the dataset and the bar centres (N, 2) as (row, col).

    subjects: give images that many subject ids (round robin); split: (val, test) fractions for an official split.
    """
    rng = np.random.default_rng(seed)
    k = len(classes)
    ordered = tuple(c for c in EMOTIONS if c in classes)
    local = rng.integers(0, k, n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = rng.normal(60, 18, (n, size, size)).astype(np.float32)
    right = rng.random(n) < 0.5
    cy = rng.uniform(0.3, 0.7, n) * size
    cx = np.where(right, rng.uniform(0.62, 0.8, n), rng.uniform(0.2, 0.38, n)) * size
    length, width = size / 6, size / 28
    for i in range(n):
        a = np.pi * local[i] / k
        u = (xx - cx[i]) * np.cos(a) + (yy - cy[i]) * np.sin(a)
        v = -(xx - cx[i]) * np.sin(a) + (yy - cy[i]) * np.cos(a)
        imgs[i] += 160 * np.exp(-(u / length) ** 4 - (v / width) ** 2)
    images = np.clip(imgs, 0, 255).astype(np.uint8)[..., None]
    labels = np.array([EMOTIONS.index(ordered[c]) for c in local], dtype=np.int64)
    subj = np.array([f"S{i % subjects:03d}" for i in range(n)]) if subjects else None
    sp = None
    if split:
        u = rng.random(n)
        sp = np.where(u < split[1], "test", np.where(u < split[0] + split[1], "val", "train"))
    ds = FaceDataset(name=name, root="", images=images, labels=labels, classes=ordered, subjects=subj, split=sp,
                     files=np.array([f"{name}_{i:05d}.png" for i in range(n)]))
    return ds, np.stack([cy, cx], axis=1)
