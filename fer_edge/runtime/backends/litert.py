"""LiteRT (TFLite) backend: ai-edge-litert, else tflite-runtime, else the interpreter inside TensorFlow."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.backends.base import BACKENDS, BackendBase

_INTERPRETERS = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),  # last resort only; the device install never has it
)


def _interpreter_class() -> tuple[type, str]:
    for module, dist in _INTERPRETERS:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            continue
        try:
            return importlib.import_module(module).Interpreter, dist
        except (ImportError, AttributeError):
            continue
    raise ModelError("no TFLite interpreter: pip install ai-edge-litert")


@BACKENDS.register("litert")
class LiteRTBackend(BackendBase):
    name = "litert"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    package = "ai-edge-litert"
    modules: ClassVar[tuple[str, ...]] = ("ai_edge_litert", "tflite_runtime")
    priority = 0

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.require()
        cls, self.provider = _interpreter_class()
        try:
            self.interp = cls(model_path=str(path), num_threads=threads or None)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a valid TFLite model ({str(exc)[:100]})") from None
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        self._batch = -1
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])

    def invoke(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n != self._batch:
            self.interp.resize_tensor_input(self._in["index"], [n, *x.shape[1:]], strict=False)
            self.interp.allocate_tensors()
            self._batch = n
        self.interp.set_tensor(self._in["index"], np.ascontiguousarray(x, dtype=self.input_dtype))
        self.interp.invoke()
        return self.interp.get_tensor(self._out["index"]).copy()
