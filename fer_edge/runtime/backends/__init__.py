"""Inference backends, one module each, in one registry. Importing this package imports no backend library."""

from fer_edge.runtime.backends import litert, onnxruntime, openvino  # noqa: F401  (register)
from fer_edge.runtime.backends.base import BACKENDS, Backend, BackendBase

__all__ = ["BACKENDS", "Backend", "BackendBase", "available_backends"]


def available_backends() -> list[str]:
    """Names of the backends whose packages import here, in auto-selection order."""
    ranked = sorted(BACKENDS.items(), key=lambda kv: kv[1].priority)
    return [name for name, cls in ranked if cls.is_available()]
