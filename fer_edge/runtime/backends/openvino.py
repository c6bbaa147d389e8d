"""OpenVINO backend: runs OpenVINO IR (.xml + .bin) and ONNX files on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.backends.base import BACKENDS, BackendBase


@BACKENDS.register("openvino")
class OpenVINOBackend(BackendBase):
    formats: ClassVar[tuple[str, ...]] = ("openvino", "onnx")
    package = "openvino"
    modules: ClassVar[tuple[str, ...]] = ("openvino",)
    priority = 2

    def __init__(self, path: str | Path, threads: int | None = None, device: str = "CPU",
                 precision_hint: str | None = "f32") -> None:
        self.require()
        import openvino as ov

        core = ov.Core()
        config: dict[str, object] = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
        config["PERFORMANCE_HINT"] = "LATENCY"
        if precision_hint and device == "CPU":
            # The CPU plugin otherwise computes float layers in bf16 where the CPU has AVX512_BF16/AMX (and f16
            # on ARM): an fp32 IR would silently lose precision. None keeps the plugin's default.
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        try:
            model = core.read_model(str(path))
            if model.inputs[0].get_partial_shape()[0].is_static:
                shape = model.inputs[0].get_partial_shape()
                shape[0] = -1
                model.reshape({model.inputs[0]: shape})
            self.compiled = core.compile_model(model, device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses
            raise ModelError(f"{path}: not a valid OpenVINO/ONNX model ({str(exc)[:100]})") from None
        self.request = self.compiled.create_infer_request()
        self.input_dtype = np.dtype(self.compiled.inputs[0].get_element_type().to_dtype())

    def invoke(self, x: np.ndarray) -> np.ndarray:
        out = self.request.infer({0: np.ascontiguousarray(x, self.input_dtype)})
        return np.asarray(next(iter(out.values())))
