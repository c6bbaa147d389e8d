"""The BlazeFace detector's code before its pre- and post-processing were cut (commit 5c8dd71), kept as the
reference the fast path is tested against and timed beside (scripts/compare/detector_stages.py): cv2.resize and
cvtColor into a float canvas copied in with set_tensor, every output copied out, then decoded."""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.runtime.detectors.base import as_bgr
from fer_edge.runtime.detectors.blazeface import RAW_SCORE_LIMIT, BlazeFace, Letterbox, letterbox
from fer_edge.runtime.geometry import clip_box, weighted_nms
from fer_edge.runtime.types import Face


class ReferenceBlazeFace(BlazeFace):
    """Same model, same stages (``_fill``, invoke, ``_read``, ``_decode``), the earlier code in each."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._canvas = np.zeros((self.size, self.size, 3), np.float32)
        self._bars: tuple[int, int, int, int] | None = None

    def _fill(self, image: np.ndarray) -> Letterbox:
        frame = as_bgr(image)
        lb = letterbox(*frame.shape[:2], self.size)
        small = cv2.resize(frame, (lb.nw, lb.nh), interpolation=cv2.INTER_AREA if lb.r < 1 else cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        canvas = self._canvas
        if self._bars != (lb.px, lb.py, lb.nw, lb.nh):
            canvas.fill(-1.0)
            self._bars = (lb.px, lb.py, lb.nw, lb.nh)
        view = canvas[lb.py:lb.py + lb.nh, lb.px:lb.px + lb.nw]
        np.multiply(rgb, np.float32(1 / 127.5), out=view, casting="unsafe")
        view -= 1.0
        self.interp.set_tensor(self._in, canvas[None])
        return lb

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.interp.get_tensor(self._scores).reshape(-1).copy(),
                self.interp.get_tensor(self._boxes).reshape(-1, 16).copy())

    def _decode(self, found: tuple[np.ndarray, np.ndarray], lb: Letterbox) -> list[Face]:
        raw_scores, raw_boxes = found
        s, r, px, py = self.size, lb.r, lb.px, lb.py
        thr = self.score_threshold
        logit = np.log(thr / (1 - thr)) if 0 < thr < 1 else -1e9
        keep = np.nonzero(raw_scores > logit)[0]
        if len(keep) == 0:
            return []
        raw = raw_boxes[keep]
        scores = 1 / (1 + np.exp(-np.clip(raw_scores[keep], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        pts = raw.reshape(-1, 8, 2) / s
        pts[:, 0] += self.anchors[keep]
        pts[:, 2:] += self.anchors[keep][:, None]
        pts_px = (pts * s - np.array((px, py), np.float32)) / r
        centre, size = pts_px[:, 0], pts[:, 1] * (s / r)
        valid = (size > 0).all(1)
        if not valid.any():
            return []
        boxes = np.concatenate([centre - size / 2, size], 1)[valid]
        kept = weighted_nms(boxes, scores[valid], self.nms_iou, extra=pts_px[valid, 2:])
        faces = []
        for box, score, kps in kept:
            b = clip_box(box, (lb.h, lb.w))
            if b[2] > 0 and b[3] > 0:
                faces.append(Face(b, score, tuple((float(x), float(y)) for x, y in kps)))
        return self._finish(faces)
