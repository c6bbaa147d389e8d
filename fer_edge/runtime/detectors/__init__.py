"""Face detectors, one module each, in one registry: ``get_detector("auto").detect(image) -> list[Face]``."""

from __future__ import annotations

from typing import Any

from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.runtime.detectors import blazeface, haar  # noqa: F401  (register)
from fer_edge.runtime.detectors.base import DETECTORS, Detector, DetectorBase

__all__ = ["DETECTORS", "Detector", "DetectorBase", "available_detectors", "get_detector"]

AUTO_ORDER = ("blazeface", "haar")


def available_detectors() -> list[str]:
    """Names of the detectors usable here."""
    return [name for name, cls in DETECTORS.items() if cls.is_available()]


def get_detector(name: str = "auto", *, threads: int | None = None, **options: Any) -> DetectorBase:
    """An opened detector by name; ``auto`` = BlazeFace if its model is found, else Haar, else a clear error.

    ``options``: those the detector declares (``DETECTORS.get(name).options``): ``min_face`` (px), ``max_faces``,
    ``score_threshold``, ``nms_iou`` for all, ``model_path`` and its own; a None value means the default. Any
    other name is an error. ``threads``: inference threads for a detector that runs a model (ignored by others).
    """
    if name == "auto":
        for cand in AUTO_ORDER:
            if DETECTORS.get(cand).is_available():
                return _open(cand, threads, options)
        hints = "; ".join(f"{n}: {DETECTORS.get(n).hint}" for n in AUTO_ORDER)
        raise ModelError(f"no face detector available ({hints})")
    return _open(name, threads, options)


def _open(name: str, threads: int | None, options: dict[str, Any]) -> DetectorBase:
    cls = DETECTORS.get(name)
    options = {k: v for k, v in options.items() if v is not None}  # None: the detector's default
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise FerEdgeError(f"face detector {name} has no option {', '.join(unknown)} "
                           f"(it takes {', '.join(cls.options)})")
    if not options.get("model_path") and not cls.is_available():
        raise ModelError(f"face detector {name} is not available: {cls.hint}")
    if threads is not None and "threads" in cls.options:
        options["threads"] = threads
    return cls(**options)
