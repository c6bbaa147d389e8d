"""The one definition of how a face becomes model input, shared by training, conversion and the runtime
(numpy + OpenCV only; the runtime imports it, so no TensorFlow here).

- ``CropRule``: how a detected face box becomes the crop (grown by ``margin``, made square, fitted to the image,
  and with ``align`` rotated so the eyes are level when the detector's eye keypoints show a roll of at least
  ``ALIGN_MIN_ROLL`` degrees). The data layer crops full photos with it (``CropRule.cut``), the runtime crops frames
  with the bundle's, and the run record and the manifest carry it from training to the device.
- ``InputSpec``: how a crop becomes the float tensor a model takes (size, colour, ``(x * scale - mean) / std``).
  ``model_input_spec(size)`` is what every fer-edge trained model takes (gray, [0, 1]); ``to_model_input`` applies a
  spec to a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError, ModelError

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
MAX_INPUT_SIDE = 1024  # model input height / width (FER models take 48-299 px)

CROP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["margin", "square"],
    "properties": {"margin": {"type": "number", "minimum": 0, "maximum": 1}, "square": {"type": "boolean"},
                   "align": {"type": "boolean"}},
}
# Eye alignment: rotate when the eye line is tilted by at least this many degrees (below it the crop is the plain
# view, bit for bit), and not past MAX (the eyes' order is then in doubt). scripts/photo_accuracy.py measured it.
ALIGN_MIN_ROLL = 5.0
ALIGN_MAX_ROLL = 60.0
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["height", "width", "channels", "color", "scale", "mean", "std"],
    "properties": {
        "height": {"type": "integer", "minimum": 8, "maximum": MAX_INPUT_SIDE},
        "width": {"type": "integer", "minimum": 8, "maximum": MAX_INPUT_SIDE},
        "channels": {"type": "integer", "enum": [1, 3]}, "color": {"enum": ["gray", "rgb", "bgr"]},
        "layout": {"enum": ["NHWC"]}, "scale": {"type": "number"},
        "mean": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
        "std": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 3},
    },
}


@dataclass(frozen=True)
class CropRule:
    """A face box grown by ``margin`` x its longer side on each side (``square``: into a square; else each side by
    ``margin`` x its own length), shifted, and if need be shrunk, to fit the image. ``align``: ``cut`` rotates the
    crop about the face's centre so the eyes are level when the face's eye keypoints (BlazeFace's 0 and 1) are
    tilted by ``ALIGN_MIN_ROLL`` to ``ALIGN_MAX_ROLL`` degrees; faces without keypoints (Haar, given boxes) are cut
    plain. ``align`` says how the runtime cuts faces for a model, not how its training faces were cut (the photo
    readers leave it off: ``fer_edge.data.faces.ALIGN_PHOTOS``); margin and square are the training crop's."""

    margin: float = 0.08
    square: bool = True
    align: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, (int, float)) and math.isfinite(self.margin) and 0 <= self.margin <= 1):
            raise FerEdgeError(f"crop margin must be a number in [0, 1], got {self.margin!r}")

    def cut(self, image: np.ndarray, box: Box | tuple[float, ...], keypoints: Sequence[Sequence[float]] = (),
            min_roll: float = ALIGN_MIN_ROLL) -> np.ndarray:
        """The crop of face ``box`` in ``image``: a view of ``self.box``'s pixels, or (``align`` and a roll from
        ``min_roll`` to ``ALIGN_MAX_ROLL`` degrees) those pixels rotated about the face's centre so the eyes are
        level (a new array, edges replicated). A turned face's box is grown by 1 / cos(roll) first: BlazeFace's box
        of a face turned by r degrees is about cos(r) x the upright one (JAFFE: 0.87-0.90 at 30 degrees), so the
        aligned crop has the upright crop's scale (0.99-1.04 x; scripts/photo_accuracy.py). The face's centre stays
        where the plain crop of that box has it."""
        roll = eye_roll(keypoints) if self.align else None
        if roll is None or not min_roll <= abs(roll) <= ALIGN_MAX_ROLL:
            x, y, w, h = self.box(box, image.shape)
            return image[y:y + h, x:x + w]
        fx, fy, fw, fh = (float(v) for v in box)
        cx, cy, grow = fx + fw / 2, fy + fh / 2, 1.0 / math.cos(math.radians(roll))
        x, y, w, h = self.box((cx - fw * grow / 2, cy - fh * grow / 2, fw * grow, fh * grow), image.shape)
        m = cv2.getRotationMatrix2D((cx, cy), roll, 1.0)
        m[:, 2] -= (x, y)
        return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def box(self, box: Box | tuple[float, ...], shape: tuple[int, ...]) -> Box:
        """The crop box (x, y, w, h) for face ``box`` in an image of ``shape``."""
        x, y, w, h = box
        img_h, img_w = shape[:2]
        if self.square:
            side = max(1, min(round(max(w, h) * (1 + 2 * self.margin)), img_w, img_h))
            cw = ch = side
        else:
            cw = max(1, min(round(w * (1 + 2 * self.margin)), img_w))
            ch = max(1, min(round(h * (1 + 2 * self.margin)), img_h))
        cx, cy = x + w / 2, y + h / 2
        left = int(np.clip(round(cx - cw / 2), 0, img_w - cw))
        top = int(np.clip(round(cy - ch / 2), 0, img_h - ch))
        return left, top, cw, ch

    def to_dict(self) -> dict[str, Any]:
        """``align`` only when off: a rule without the key (every rule written before it existed) is aligned by
        this runtime, and a reader from before the key sees it only on a rule that turns alignment off."""
        d: dict[str, Any] = {"margin": float(self.margin), "square": bool(self.square)}
        if not self.align:
            d["align"] = False
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CropRule:
        """From a validated dict (CROP_SCHEMA; ``align`` absent = on); unknown keys are the caller's to report."""
        return cls(margin=float(d["margin"]), square=bool(d["square"]), align=bool(d.get("align", True)))


def eye_roll(keypoints: Sequence[Sequence[float]]) -> float | None:
    """Degrees the line from keypoint 0 (the right eye, on the image's left) to keypoint 1 (the left eye) is
    turned clockwise from horizontal, in image coordinates; None without two finite, distinct points."""
    if len(keypoints) < 2 or len(keypoints[0]) < 2 or len(keypoints[1]) < 2:
        return None
    (rx, ry), (lx, ly) = (float(v) for v in keypoints[0][:2]), (float(v) for v in keypoints[1][:2])
    dx, dy = lx - rx, ly - ry
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx == dy == 0:
        return None
    return math.degrees(math.atan2(dy, dx))


DEFAULT_CROP = CropRule()  # what the data layer crops full photos with; v1 manifests and older runs mean this


@dataclass(frozen=True)
class InputSpec:
    """How a face crop becomes model input: resize to (height, width), convert colour, (x*scale - mean) / std."""

    height: int
    width: int
    channels: int = 1
    color: str = "gray"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NHWC"

    def prepare(self, faces: list[np.ndarray] | np.ndarray, bgr: bool = False) -> np.ndarray:
        """uint8 face crops (gray (H, W[, 1]) or colour (H, W, 3), any size) -> float32 (N, h, w, c).

        Colour crops are taken as RGB, or BGR when ``bgr`` (frames straight from OpenCV). The arithmetic runs in
        float64 and is rounded once to float32, so x / 255 is exact (what the trainer has always fed its models).
        """
        out = np.empty((len(faces), self.height, self.width, self.channels), dtype=np.float32)
        mean = np.asarray(self.mean, np.float64)
        std = np.asarray(self.std, np.float64)
        for i, face in enumerate(faces):
            img = _convert_color(face, self.color, bgr)
            h, w = img.shape[:2]
            if (h, w) != (self.height, self.width):
                interp = cv2.INTER_AREA if h > self.height else cv2.INTER_LINEAR
                img = cv2.resize(img, (self.width, self.height), interpolation=interp)
            img = img.reshape(self.height, self.width, self.channels)
            out[i] = (img.astype(np.float64) * self.scale - mean) / std
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = [float(v) for v in self.mean], [float(v) for v in self.std]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """From a dict checked by ``check_input`` (keys outside the dataclass are ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["mean"], kw["std"] = tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"])
        return cls(**kw)


def check_input(inp: dict[str, Any], where: str, what: str = "manifest") -> None:
    """The rules INPUT_SCHEMA cannot say: colour matching the channels, one mean/std or one per channel."""
    if (inp["color"] == "gray") != (inp["channels"] == 1):
        raise ModelError(f"{where}: invalid {what} at input: color {inp['color']} with {inp['channels']} "
                         "channel(s); gray takes 1, rgb and bgr take 3")
    for key in ("mean", "std"):
        if len(inp[key]) not in (1, inp["channels"]):
            raise ModelError(f"{where}: invalid {what} at input/{key}: {len(inp[key])} values for "
                             f"{inp['channels']} channel(s); give 1 or {inp['channels']}")


def model_input_spec(size: int, channels: int = 1) -> InputSpec:
    """What a fer-edge trained model takes: ``size`` x ``size``, gray (or RGB), x / 255 (the backbone's own
    normalization is a layer inside the model)."""
    return InputSpec(height=int(size), width=int(size), channels=channels, color="gray" if channels == 1 else "rgb",
                     scale=1.0 / 255.0, mean=(0.0,) * channels, std=(1.0,) * channels)


def to_model_input(images: np.ndarray | list[np.ndarray], spec: InputSpec | int) -> np.ndarray:
    """uint8 (N, H, W, C) RGB or gray faces -> float32 model input; ``spec`` an InputSpec or a size (gray, x/255)."""
    spec = spec if isinstance(spec, InputSpec) else model_input_spec(int(spec))
    return spec.prepare(images)


def _convert_color(img: np.ndarray, color: str, bgr: bool) -> np.ndarray:
    gray_in = img.ndim == 2 or img.shape[-1] == 1
    if color == "gray":
        if gray_in:
            return img.reshape(img.shape[:2])
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
    if gray_in:
        return np.repeat(img.reshape(*img.shape[:2], 1), 3, axis=2)
    if (color == "rgb") == bgr:  # rgb wanted from bgr input, or bgr wanted from rgb input
        return img[..., ::-1]
    return img
