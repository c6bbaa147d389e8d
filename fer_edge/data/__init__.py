"""Data readers: every FER dataset layout into one ``FaceDataset``, auto-detected from its path."""

from __future__ import annotations

from pathlib import Path

from fer_edge.data import ferplus  # noqa: F401  (registers the layout)
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import SPLITS, FaceDataset, Layout
from fer_edge.errors import DataError

__all__ = ["DATASETS", "SPLITS", "FaceDataset", "Layout", "detect_layout", "load_dataset"]


def detect_layout(path: str | Path) -> str:
    """Name of the first registered layout that recognizes ``path``; one clear error if none does."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for name, layout in DATASETS.items():
        if layout().detect(path):
            return name
    raise DataError(f"{path}: unknown dataset layout; tried {', '.join(DATASETS.names())}")


def load_dataset(path: str | Path, format: str | None = None, strict: bool = False) -> FaceDataset:
    """Read the dataset at ``path`` (layout auto-detected unless ``format`` names one)."""
    path = Path(path)
    name = format or detect_layout(path)
    layout = DATASETS.get(name)()
    if format and not layout.detect(path):
        raise DataError(f"{path}: does not look like the {name} layout ({layout.description})")
    return layout.read(path, strict=strict)
