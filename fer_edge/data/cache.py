"""A cache of read datasets: one uncompressed .npz per source, so a second load takes well under 2 s.

The key is the layout name and options, the absolute path, the reader version and a fingerprint of the
source's file listing (names, sizes, mtimes: a cheap os.scandir walk of the path, or of the files a layout
lists in ``sources(path)``). Any change to the files gives a new
key; the stale entry of the same source is removed when the new one is written. Files are written
atomically, so a cache is either whole or absent. Location: ``$FER_EDGE_CACHE`` or ``~/.cache/fer-edge``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.data.types import FaceDataset

FORMAT = 1  # bump when the file layout below changes
COLUMNS = ("labels", "soft", "subjects", "split", "files")


def cache_dir() -> Path:
    return Path(os.environ.get("FER_EDGE_CACHE") or Path.home() / ".cache" / "fer-edge")


def fingerprint(*paths: Path) -> str:
    """Hash of the name, size and mtime of every file under each of ``paths`` (a file stands for itself)."""
    rows: list[str] = []
    for path in paths:
        if path.is_file():
            st = path.stat()
            rows.append(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}")
            continue
        stack = [(f"{path.name}/", os.fspath(path))]
        while stack:
            rel, folder = stack.pop()
            with os.scandir(folder) as it:
                for e in it:
                    if e.is_dir():
                        stack.append((f"{rel}{e.name}/", e.path))
                    elif e.is_file():
                        st = e.stat()
                        rows.append(f"{rel}{e.name}\0{st.st_size}\0{st.st_mtime_ns}")
    rows.sort()
    return hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_file(layout: Any, path: Path) -> Path:
    """Where the cache of ``path`` read by ``layout`` lives (the name changes whenever the source does)."""
    salt = layout.cache_salt() if hasattr(layout, "cache_salt") else ""
    source = _short(f"{layout.name}\0{path.resolve()}\0{salt}")
    sources = layout.sources(path) if hasattr(layout, "sources") else [path]
    state = _short(f"{FORMAT}\0{getattr(layout, 'version', 0)}\0{fingerprint(*sources)}")
    return cache_dir() / f"{layout.name}-{source}-{state}.npz"


def save(ds: FaceDataset, target: Path) -> Path:
    """Write ``ds`` to ``target`` atomically; other states of the same source are removed."""
    meta = {"format": FORMAT, "name": ds.name, "root": ds.root, "classes": list(ds.classes),
            "problems": list(ds.problems)}
    arrays = {k: getattr(ds, k) for k in COLUMNS if getattr(ds, k) is not None}
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        np.savez(fh, images=ds.images, meta=np.array(json.dumps(meta)), **arrays)
    prefix = target.name.rsplit("-", 1)[0] + "-"
    for old in target.parent.glob(f"{prefix}*.npz"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def load(target: Path) -> FaceDataset | None:
    """The dataset cached in ``target``; None when absent or unreadable (it is then simply rebuilt)."""
    try:
        with np.load(target, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("format") != FORMAT:
                return None
            cols = {k: npz[k] for k in COLUMNS if k in npz.files}
            images = npz["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return FaceDataset(name=meta["name"], root=meta["root"], images=images, classes=tuple(meta["classes"]),
                       problems=tuple(meta["problems"]), **cols)


def clear(pattern: str = "*") -> int:
    """Remove cached datasets (``pattern`` matches file names, e.g. ``ferplus-*``); returns how many."""
    files = list(cache_dir().glob(f"{pattern}.npz")) if cache_dir().is_dir() else []
    for f in files:
        f.unlink(missing_ok=True)
    return len(files)
