"""The detector's input fill: a uint8 BGR frame shrunk with OpenCV's INTER_AREA, as RGB in [-1, 1], written
straight into a float32 view (the interpreter's input tensor).

For a whole shrink factor k >= 3 (640x480 -> 128x96 is k = 5) ``cv2.resize`` averages each k x k block of the
uint8 frame with a scalar loop over its k * k pixels. Here each band of k rows is summed first (``cv2.add`` and
``cv2.accumulate`` into float32: exact integers), the bands are shrunk k times along the rows only (a float resize
on a k times smaller image; ``rint(mean * k)`` is the exact block sum again), and the sum is rounded as cv2 rounds
it, ``rint(sum * float32(1 / k**2))``: bit-identical (tested), in about 60% of the time. Any other factor (and
k = 2, whose SIMD path rounds differently) uses ``cv2.resize`` itself.
"""

from __future__ import annotations

import cv2
import numpy as np

INV_127_5 = np.float32(1 / 127.5)
MAX_FACTOR = 64  # block sums stay exact integers in float32 far beyond this (k * k * 255 < 2**24)


def whole_factor(h: int, w: int, nh: int, nw: int) -> int:
    """k when (h, w) is exactly k times (nh, nw) with 3 <= k <= MAX_FACTOR, else 0 (cv2.resize is used)."""
    if nh <= 0 or h % nh:
        return 0
    k = h // nh
    return k if 3 <= k <= MAX_FACTOR and w == k * nw else 0


class AreaFill:
    """Reusable buffers for one frame geometry; ``fill(frame, out)`` writes (RGB / 127.5 - 1) into ``out``."""

    def __init__(self) -> None:
        self._key: tuple[int, ...] | None = None

    def _prepare(self, h: int, w: int, nh: int, nw: int, k: int) -> None:
        if self._key == (h, w, nh, nw, k):
            return
        self._key = (h, w, nh, nw, k)
        self._small = np.empty((nh, nw, 3), np.uint8)  # cv2.resize path
        self._rgb = np.empty((nh, nw, 3), np.uint8)
        if k:
            self._rows = np.empty((nh, w, 3), np.float32)  # each band of k rows summed
            self._sums = np.empty((nh, nw, 3), np.float32)  # each k x k block summed
            self._scale = np.float32(1) / np.float32(k * k)  # cv2: saturate_cast<uchar>(sum * (1.f / area))

    def fill(self, frame: np.ndarray, out: np.ndarray, shrink: bool = True) -> None:
        """``frame`` uint8 (H, W, 3) BGR or (H, W) gray; ``out`` float32 (nh, nw, 3), any row stride; ``shrink``:
        INTER_AREA (the frame is larger than the input), else INTER_LINEAR."""
        h, w = frame.shape[:2]
        nh, nw = out.shape[:2]
        k = whole_factor(h, w, nh, nw) if shrink and frame.ndim == 3 and frame.flags.c_contiguous else 0
        self._prepare(h, w, nh, nw, k)
        if k:
            bands = frame.reshape(nh, k, w, 3)
            rows = self._rows
            cv2.add(bands[:, 0], bands[:, 1], dst=rows, dtype=cv2.CV_32F)
            for j in range(2, k):
                cv2.accumulate(bands[:, j], rows)
            sums = cv2.resize(rows, (nw, nh), dst=self._sums, interpolation=cv2.INTER_AREA)  # mean of k sums
            np.multiply(sums, np.float32(k), out=sums)
            np.rint(sums, out=sums)  # the exact block sum
            np.multiply(sums, self._scale, out=sums)
            np.rint(sums, out=sums)  # the value cv2.resize gives
            np.multiply(sums[..., ::-1], INV_127_5, out=out)  # BGR -> RGB
        else:
            interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            if frame.ndim == 2:  # gray: resize one channel, broadcast to three (resizing is per channel)
                small = cv2.resize(frame, (nw, nh), interpolation=interp)
                np.multiply(small[..., None], INV_127_5, out=out, casting="unsafe")
            else:
                small = cv2.resize(frame, (nw, nh), dst=self._small, interpolation=interp)
                rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=self._rgb)
                np.multiply(rgb, INV_127_5, out=out, casting="unsafe")
        np.subtract(out, np.float32(1.0), out=out)
