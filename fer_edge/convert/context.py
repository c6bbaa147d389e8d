"""What every toolchain gets (the Keras model, calibration faces, a scratch folder) and what it gives back."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.bundle import InputSpec
from fer_edge.convert.calibration import CALIB_HINT
from fer_edge.convert.formats import ExportFormat
from fer_edge.errors import FerEdgeError

CALIB_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Exported:
    """Files a toolchain wrote (main file first) and what it used and produced."""

    files: tuple[Path, ...]
    options: dict[str, Any]
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    input_quant: dict[str, float] | None = None
    output_quant: dict[str, float] | None = None


@dataclass
class ExportContext:
    """Shared state of one conversion. Intermediate exports (SavedModel, float ONNX) are made once, lazily."""

    model: Any
    spec: InputSpec
    classes: tuple[str, ...]
    workdir: Path
    calib: np.ndarray | None = None            # float32 model input, real faces
    calib_info: dict[str, Any] = field(default_factory=dict)
    calib_method: str = "minmax"
    max_drop_points: float | None = None
    tune: tuple[np.ndarray, np.ndarray] | None = None  # (model input, labels) for accuracy-aware quantization
    name: str = "model"
    _cache: dict[str, Path] = field(default_factory=dict)

    def saved_model(self) -> Path:
        """The model as a TensorFlow SavedModel (inference endpoint only)."""
        if "saved_model" not in self._cache:
            path = self.workdir / "saved_model"
            self.model.export(str(path), format="tf_saved_model", verbose=False)
            self._cache["saved_model"] = path
        return self._cache["saved_model"]

    def onnx_fp32(self) -> Path:
        """The model as float32 ONNX (Keras export through tf2onnx)."""
        if "onnx" not in self._cache:
            path = self.workdir / "model_fp32.onnx"
            with warnings.catch_warnings():  # keras' tf2onnx shim probes np.object
                warnings.simplefilter("ignore", FutureWarning)
                self.model.export(str(path), format="onnx", verbose=False)
            self._cache["onnx"] = path
        return self._cache["onnx"]

    def cached(self, key: str, make: Any) -> Path:
        """A scratch file made once by ``make(path)``."""
        if key not in self._cache:
            path = self.workdir / key
            make(path)
            self._cache[key] = path
        return self._cache[key]

    def require_calib(self, entry: ExportFormat) -> np.ndarray:
        if self.calib is None or len(self.calib) == 0:
            raise FerEdgeError(f"{entry.key} needs calibration faces; {CALIB_HINT}")
        return self.calib

    def metadata(self, entry: ExportFormat) -> str:
        """JSON carried inside ONNX / OpenVINO files: classes, input spec and precision (no timestamps)."""
        s = self.spec
        return json.dumps({"name": self.name, "classes": list(self.classes), "precision": entry.precision,
                           "input": {"height": s.height, "width": s.width, "channels": s.channels,
                                     "color": s.color, "scale": s.scale, "mean": list(s.mean),
                                     "std": list(s.std), "layout": s.layout}}, sort_keys=True)
