"""Data readers: every FER dataset layout into one ``FaceDataset``, auto-detected from its path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_edge.data import cache as _cache

# Each import registers one layout; detection order is each layout's ``priority``, not import order.
from fer_edge.data import (  # noqa: F401
    ckplus,
    ckplus48,
    fer2013,
    fer2013_folders,
    ferplus,
    ferplus_csv,
    imagefolder,
    jaffe,
    rafdb,
    rafdb_folders,
)
from fer_edge.data.imageio import Progress, has_unreadable
from fer_edge.data.registry import DATASETS
from fer_edge.data.report import format_summary, summary
from fer_edge.data.types import SPLITS, FaceDataset, Layout
from fer_edge.errors import DataError

__all__ = ["DATASETS", "SPLITS", "FaceDataset", "Layout", "detect_layout", "format_summary", "layouts",
           "load_dataset", "prepare", "summary"]


def layouts() -> list[str]:
    """Registered layout names in detection order (most specific first, generic class folders last)."""
    entries = list(DATASETS.items())
    return [n for n, _ in sorted(entries, key=lambda e: getattr(e[1], "priority", 50))]


def detect_layout(path: str | Path) -> str:
    """Name of the first layout (in ``layouts()`` order) that recognizes ``path``; one clear error if none does."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for name in layouts():
        if DATASETS.get(name)().detect(path):
            return name
    raise DataError(f"{path}: unknown dataset layout; tried {', '.join(layouts())}")


def load_dataset(
    path: str | Path,
    format: str | None = None,
    strict: bool = False,
    cache: bool = True,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
) -> FaceDataset:
    """Read the dataset at ``path`` (layout auto-detected unless ``format`` names one).

    With ``cache`` (the default) a dataset read before is loaded from ``fer_edge.data.cache`` unless its
    files changed; ``options`` go to the layout (e.g. ``{"neutral_first": True}`` for ckplus);
    ``progress(done, total)`` is called while images are read.
    """
    return _load(path, format, strict, cache, progress, options)[0]


def prepare(
    path: str | Path,
    format: str | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
    force: bool = False,
) -> tuple[FaceDataset, Path, bool]:
    """Build (or with ``force`` rebuild) the cache of a dataset: (dataset, cache file, whether it was read now)."""
    ds, target, fresh = _load(path, format, strict, True, progress, options, force)
    assert target is not None
    return ds, target, fresh


def _layout(path: Path, format: str | None, options: dict[str, Any] | None) -> Layout:
    name = format or detect_layout(path)
    try:
        layout = DATASETS.get(name)(**(options or {}))
    except TypeError as exc:
        raise DataError(f"layout {name}: bad options {options}: {exc}") from None
    if format and not layout.detect(path):
        raise DataError(f"{path}: does not look like the {name} layout ({layout.description})")
    return layout


def _load(
    path: str | Path, format: str | None, strict: bool, cache: bool, progress: Progress | None,
    options: dict[str, Any] | None, force: bool = False,
) -> tuple[FaceDataset, Path | None, bool]:
    path = Path(path)
    layout = _layout(path, format, options)
    if not cache:
        return layout.read(path, strict=strict, progress=progress), None, True
    target = _cache.cache_file(layout, path)
    ds = None if force or not target.is_file() else _cache.load(target)
    if ds is not None and not (strict and has_unreadable(ds.problems)):
        return ds, target, False
    ds = layout.read(path, strict=strict, progress=progress)
    try:
        _cache.save(ds, target)
    except OSError as exc:
        ds = replace(ds, problems=(*ds.problems, f"cache not written to {target.parent}: {exc.strerror or exc}"))
    return ds, target, True
