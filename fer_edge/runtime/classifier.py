"""Expression classification from a bundle: preprocessing exactly as the manifest says, (de)quantization from
the manifest's parameters, and a backend picked from what is installed and what the bundle holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_edge.bundle import Artifact, Bundle, load_bundle
from fer_edge.errors import BackendUnavailable, ModelError
from fer_edge.runtime.backends import BACKENDS, available_backends

# --backend auto prefers the fastest precision a backend has.
PRECISION_ORDER = ("int8", "int8_float_io", "dynamic", "fp16", "fp32")


def select(bundle: Bundle, backend: str = "auto", precision: str | None = None,
           format: str | None = None) -> tuple[str, Artifact]:
    """(backend name, artifact) to run: the first installed backend with a matching artifact."""
    names = available_backends() if backend == "auto" else [backend]
    if backend != "auto":
        cls = BACKENDS.get(backend)
        if not cls.is_available():
            raise BackendUnavailable(f"backend {backend} is not installed: pip install {cls.package}")
    for name in names:
        cls = BACKENDS.get(name)
        for fmt in cls.formats:
            if format and fmt != format:
                continue
            arts = bundle.find(fmt, precision)
            arts = [a for a in arts if a.status != "failed"]
            arts.sort(key=lambda a: PRECISION_ORDER.index(a.precision) if a.precision in PRECISION_ORDER else 99)
            if arts:
                return name, arts[0]
    have = sorted({f"{a.format}:{a.precision}" for a in bundle.manifest.artifacts})
    want = f"backend {backend}" if backend != "auto" else f"installed backends ({', '.join(names) or 'none'})"
    extra = f" {precision}" if precision else ""
    raise ModelError(f"{bundle.path}: no{extra} artifact for {want}; the bundle has {', '.join(have) or 'none'}")


def quantize(x: np.ndarray, dtype: np.dtype, quant: dict | None) -> np.ndarray:
    if quant is None or np.issubdtype(dtype, np.floating):
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    q = np.round(x / quant["scale"] + quant["zero_point"])
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(y: np.ndarray, quant: dict | None) -> np.ndarray:
    if quant is None or np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32, copy=False)
    return ((y.astype(np.float32) - quant["zero_point"]) * quant["scale"]).astype(np.float32)


def flip_averaged(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation: ``predict`` on each NHWC face and its mirror image in one batch, averaged."""

    def run(x: np.ndarray) -> np.ndarray:
        p = predict(np.concatenate([x, x[:, :, ::-1]]))
        return p.reshape(2, len(x), -1).mean(axis=0)

    return run


class Classifier:
    """Face crops in, class probabilities out. ``Classifier(bundle_or_path, backend="auto", threads=1)``.
    ``flip_tta``: average each face's prediction with its mirror image's (two inferences per face)."""

    def __init__(self, bundle: Bundle | str | Path, backend: str = "auto", threads: int | None = None,
                 precision: str | None = None, format: str | None = None, flip_tta: bool = False) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.backend_name, self.artifact = select(self.bundle, backend, precision, format)
        path = self.bundle.verify(self.artifact)
        self.backend = BACKENDS.get(self.backend_name)(path, threads=threads)
        self.classes = self.bundle.manifest.classes
        self.input = self.bundle.manifest.input
        self._in_dtype = np.dtype(self.artifact.input_dtype)
        self.flip_tta = bool(flip_tta)
        self._run = flip_averaged(self._once) if self.flip_tta else self._once
        self._check_outputs()

    def _check_outputs(self) -> None:
        """One inference on a blank face at load: the model must give one finite score per manifest class."""
        s = self.input
        raw = self.backend.invoke(quantize(np.zeros((1, s.height, s.width, s.channels), np.float32), self._in_dtype,
                                           self.artifact.input_quant))
        n = int(np.asarray(raw).size)
        if n != len(self.classes):
            raise ModelError(f"{self.bundle.path}: the manifest lists {len(self.classes)} classes but "
                             f"{self.artifact.file} gives {n} outputs per face")

    def _once(self, x: np.ndarray) -> np.ndarray:
        raw = self.backend.invoke(quantize(x, self._in_dtype, self.artifact.input_quant))
        return dequantize(raw, self.artifact.output_quant).reshape(len(x), -1)

    def predict_tensor(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 NHWC batch -> (N, K) float32 probabilities."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        p = self._run(x)
        if not np.isfinite(p).all():  # never hand NaN or infinity on (JSON lines, overlays, accuracy)
            raise ModelError(f"{self.bundle.path}: {self.artifact.file} gave non-finite probabilities (NaN or "
                             "infinity); the model or its manifest's normalization is broken")
        return p

    def predict(self, faces: list[np.ndarray] | np.ndarray, bgr: bool = False) -> np.ndarray:
        """uint8 face crops (gray or colour, any size) -> (N, K) probabilities in manifest class order."""
        return self.predict_tensor(self.input.prepare(faces, bgr=bgr))

    def describe(self) -> str:
        a = self.artifact
        tta = ", flip TTA" if self.flip_tta else ""
        return f"{self.bundle.manifest.name} {a.format}/{a.precision} on {self.backend_name}{tta}"
