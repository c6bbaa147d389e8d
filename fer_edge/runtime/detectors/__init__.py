"""Face detectors, one module each, in one registry: ``get_detector("auto").detect(image) -> list[Face]``."""

from __future__ import annotations

import inspect
from typing import Any

from fer_edge.errors import ModelError
from fer_edge.runtime.detectors import blazeface, haar  # noqa: F401  (register)
from fer_edge.runtime.detectors.base import DETECTORS, Detector, DetectorBase

__all__ = ["DETECTORS", "Detector", "DetectorBase", "available_detectors", "get_detector"]

AUTO_ORDER = ("blazeface", "haar")


def available_detectors() -> list[str]:
    """Names of the detectors usable here."""
    return [name for name, cls in DETECTORS.items() if cls.is_available()]


def get_detector(name: str = "auto", **options: Any) -> DetectorBase:
    """An opened detector by name; ``auto`` = BlazeFace if its model is found, else Haar, else a clear error.

    Options: ``min_face`` (px), ``max_faces``, ``score_threshold``, ``nms_iou``, ``model_path``, ``threads``
    (the last two only where the detector takes them).
    """
    if name == "auto":
        for cand in AUTO_ORDER:
            if DETECTORS.get(cand).is_available():
                return _open(cand, options)
        hints = "; ".join(f"{n}: {DETECTORS.get(n).hint}" for n in AUTO_ORDER)
        raise ModelError(f"no face detector available ({hints})")
    return _open(name, options)


def _open(name: str, options: dict[str, Any]) -> DetectorBase:
    cls = DETECTORS.get(name)
    if not options.get("model_path") and not cls.is_available():
        raise ModelError(f"face detector {name} is not available: {cls.hint}")
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    return cls(**kwargs)
