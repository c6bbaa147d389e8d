"""Box arithmetic shared by detectors and the tracker. Boxes are (x, y, w, h) in pixels; the crop step's rule is
``fer_edge.preprocess.CropRule``."""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def iou(a: Box | np.ndarray, b: Box | np.ndarray) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) arrays of (x, y, w, h) boxes -> (N, M)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[:, None, 2] * a[:, None, 3]) + (b[None, :, 2] * b[None, :, 3]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3,
                 extra: np.ndarray | None = None) -> list[tuple[np.ndarray, float, np.ndarray | None]]:
    """MediaPipe-style weighted NMS: each kept box is the score-weighted mean of the boxes it suppresses.

    ``boxes`` (N, 4) as (x, y, w, h); ``extra`` (N, ...) values (keypoints) averaged the same way.
    Returns (box, score of the best member, extra) sorted by score.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    extra = extra[order] if extra is not None else None
    alive = np.ones(len(boxes), bool)
    out = []
    ious = iou_matrix(boxes, boxes)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        members = alive & (ious[i] > iou_threshold)
        members[i] = True
        w = scores[members][:, None]
        box = (boxes[members] * w).sum(0) / w.sum()
        ext = None
        if extra is not None:
            e = extra[members].reshape(int(members.sum()), -1)
            ext = ((e * w).sum(0) / w.sum()).reshape(extra.shape[1:])
        out.append((box, float(scores[i]), ext))
        alive &= ~members
    return out


def clip_box(box: Box | np.ndarray, shape: tuple[int, ...]) -> Box:
    """Round and clip a box to an image of ``shape``; may return zero width/height."""
    h, w = shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    x1, y1 = round(max(0.0, x)), round(max(0.0, y))
    x2, y2 = round(min(float(w), x + bw)), round(min(float(h), y + bh))
    return x1, y1, max(0, x2 - x1), max(0, y2 - y1)
