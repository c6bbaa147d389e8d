"""LiteRT (TFLite) backend: ai-edge-litert, else tflite-runtime, else the interpreter inside TensorFlow."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.runtime.backends.base import BACKENDS, BackendBase

MAX_BATCH_INTERPRETERS = 8  # batch sizes kept ready (faces per frame); the oldest is dropped beyond

_INTERPRETERS = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),  # last resort only; the device install never has it
)


# what the LiteRT runtime writes on fd 2 (from C++) for every interpreter it allocates: no news to the user
_CHATTER = re.compile(r"INFO: Created TensorFlow Lite (?:XNNPACK )?delegate for CPU\.\s*")


@contextlib.contextmanager
def quiet_runtime() -> Iterator[None]:
    """Keep the runtime's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." off the console while an
    interpreter is created or allocated: fd 2 goes to a temporary file meanwhile (restored even on error) and what
    else landed there (a real error) is written back. FER_EDGE_DEBUG=1 leaves fd 2 alone."""
    if os.environ.get("FER_EDGE_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 2)
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = [ln for ln in tmp.read().splitlines(keepends=True)
                    if not _CHATTER.fullmatch(ln.decode("utf-8", "replace"))]
            if rest:
                os.write(2, b"".join(rest))


def _interpreter_class() -> tuple[type, str]:
    for module, dist in _INTERPRETERS:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            continue
        try:
            return importlib.import_module(module).Interpreter, dist
        except (ImportError, AttributeError):
            continue
    raise ModelError("no TFLite interpreter: pip install ai-edge-litert")


def open_interpreter(path: str | Path, threads: int | None = None) -> Any:
    """A TFLite interpreter (not yet allocated) of the model at ``path`` from the first installed runtime
    (ai-edge-litert, tflite-runtime, then TensorFlow); ModelError when there is none or the file is no model."""
    cls, _ = _interpreter_class()
    try:
        with quiet_runtime():
            return cls(model_path=str(path), num_threads=threads or None)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a valid TFLite model ({str(exc)[:100]})") from None


@BACKENDS.register("litert")
class LiteRTBackend(BackendBase):
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    package = "ai-edge-litert"
    modules: ClassVar[tuple[str, ...]] = ("ai_edge_litert", "tflite_runtime")
    priority = 0

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.require()
        cls, self.provider = _interpreter_class()
        self.path, self.threads, self._cls = str(path), threads or None, cls
        try:
            with quiet_runtime():
                self.interp = cls(model_path=self.path, num_threads=self.threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a valid TFLite model ({str(exc)[:100]})") from None
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])
        # One interpreter per batch size, each resized BEFORE its first allocation: resizing an allocated
        # interpreter keeps working but loses XNNPACK's speed (3-4x slower per face, measured on x86).
        self._by_batch: dict[int, object] = {}
        self._fresh: object | None = self.interp  # not yet allocated: serves the first batch size

    def _for_batch(self, n: int) -> object:
        interp = self._by_batch.get(n)
        if interp is None:
            if len(self._by_batch) >= MAX_BATCH_INTERPRETERS:
                self._by_batch.pop(next(iter(self._by_batch)))
            with quiet_runtime():
                interp = self._fresh or self._cls(model_path=self.path, num_threads=self.threads)
                self._fresh = None
                interp.resize_tensor_input(self._in["index"], [n, *self._in["shape"][1:]], strict=False)
                interp.allocate_tensors()
            self._by_batch[n] = interp
        return interp

    def invoke(self, x: np.ndarray) -> np.ndarray:
        interp = self._for_batch(len(x))
        interp.set_tensor(self._in["index"], np.ascontiguousarray(x, dtype=self.input_dtype))
        interp.invoke()
        return interp.get_tensor(self._out["index"]).copy()
