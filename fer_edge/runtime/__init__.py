"""The device runtime: sources -> face detector -> tracker -> expression classifier -> smoothing -> outputs.

Numpy, OpenCV and an inference backend only (never TensorFlow). Names load lazily::

    from fer_edge.runtime import Pipeline
    result = Pipeline.from_bundle("bundle/").process(frame_bgr)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Pipeline": "fer_edge.runtime.pipeline",
    "measure": "fer_edge.runtime.run",
    "RunOptions": "fer_edge.runtime.options",
    "Classifier": "fer_edge.runtime.classifier",
    "get_detector": "fer_edge.runtime.detectors",
    "open_source": "fer_edge.runtime.sources",
    "Face": "fer_edge.runtime.types",
    "Expression": "fer_edge.runtime.types",
    "FrameResult": "fer_edge.runtime.types",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_edge.runtime' has no attribute {name!r}")
