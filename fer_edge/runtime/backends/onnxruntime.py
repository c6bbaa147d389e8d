"""ONNX Runtime backend (CPU; CUDA or TensorRT providers where the installed build has them)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.backends.base import BACKENDS, BackendBase

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8,
           "tensor(uint8)": np.uint8}


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(BackendBase):
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    package = "onnxruntime"
    modules: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    priority = 1

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None) -> None:
        self.require()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # ort raises its own exception types
            raise ModelError(f"{path}: not a valid ONNX model ({str(exc)[:100]})") from None
        self._in = self.session.get_inputs()[0]
        self._out = self.session.get_outputs()[0].name
        self.input_dtype = np.dtype(_DTYPES.get(self._in.type, np.float32))

    def invoke(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self._out], {self._in.name: np.ascontiguousarray(x, self.input_dtype)})[0]
