"""Real faces for calibration (class-balanced, from the training data's validation split) and for evaluation
(held-out labelled faces, the test split). Never random noise."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import DataError, FerEdgeError
from fer_edge.labels import EMOTIONS

CALIB_SPLITS = ("val", "train")  # first present wins
EVAL_SPLITS = ("test", "val")  # val only for data without a test split
CALIB_HINT = "pass --calib PATH (a face dataset folder, e.g. FERPlus; its validation split is used)"
EVAL_HINT = "pass --eval PATH (a labelled face dataset folder; its test split is used)"


@dataclass(frozen=True)
class FaceSet:
    """Faces taken from a dataset for one role."""

    faces: np.ndarray          # uint8 (N, H, W, C)
    labels: np.ndarray         # indices into the model's classes; -1 = unlabelled or a class the model lacks
    dataset: str
    path: str
    split: str | None
    protocol: str

    def __len__(self) -> int:
        return len(self.faces)

    def describe(self) -> dict[str, Any]:
        counts = np.bincount(self.labels[self.labels >= 0], minlength=1).tolist() if len(self.labels) else []
        return {"dataset": self.dataset, "path": self.path, "split": self.split, "n": len(self),
                "protocol": self.protocol, "class_counts": counts}


def default_data_paths(run_root: str | None) -> list[Path]:
    """Where to look for data when none is given: the run's own dataset, else FERPlus under $FER_EDGE_DATA
    or ../shared/data beside the repository or the working folder."""
    cands: list[Path] = []
    if run_root:
        cands.append(Path(run_root))
        return cands
    env = os.environ.get("FER_EDGE_DATA")
    if env:
        cands += [Path(env) / "ferplus", Path(env)]
    repo = Path(__file__).resolve().parents[2]
    cands += [repo.parent / "shared" / "data" / "ferplus", Path.cwd().parent / "shared" / "data" / "ferplus"]
    return cands


def resolve(given: str | Path | None, run_root: str | None, role: str) -> Path:
    """The dataset folder for ``role`` ('calibration' or 'evaluation'): the one given, or the first default."""
    if given is not None:
        p = Path(given)
        if not p.exists():
            raise DataError(f"{p}: no such {role} data folder")
        return p
    tried = default_data_paths(run_root)
    for p in tried:
        if _is_dataset(p):
            return p
    hint = CALIB_HINT if role == "calibration" else EVAL_HINT
    where = ", ".join(str(t) for t in tried) or "nowhere"
    raise FerEdgeError(f"no {role} faces: no run metadata naming a dataset and none found at {where}; {hint}")


def _is_dataset(p: Path) -> bool:
    if not p.is_dir():
        return False
    from fer_edge.data import detect_layout

    try:
        detect_layout(p)
    except FerEdgeError:
        return False
    return True


@functools.lru_cache(maxsize=2)
def _load(path: str) -> object:
    from fer_edge.data import load_dataset

    return load_dataset(path)


def load_faces(path: Path, classes: tuple[str, ...], splits: tuple[str, ...], role: str) -> FaceSet:
    """Every face of the first split of ``splits`` the dataset has (all faces if it has no official split)."""
    ds = _load(str(Path(path).resolve()))
    split = None
    if ds.split is not None:
        present = [s for s in splits if np.any(ds.split == s)]
        if present:
            split = present[0]
            ds = ds.only_split(split)
    if len(ds) == 0:
        hint = CALIB_HINT if role == "calibration" else EVAL_HINT
        raise DataError(f"{path}: no faces for {role}; {hint}")
    lut = np.full(len(EMOTIONS), -1, dtype=np.int64)
    for i, c in enumerate(classes):
        lut[EMOTIONS.index(c)] = i
    labels = np.where(ds.labels >= 0, lut[np.clip(ds.labels, 0, None)], -1)
    protocol = "majority vote (labelled faces)" if ds.name == "ferplus" else "dataset labels"
    return FaceSet(ds.images, labels, ds.name, str(path), split, protocol)


def balanced(fs: FaceSet, n: int, seed: int = 0) -> FaceSet:
    """Up to ``n`` faces, as even across the model's classes as the data allows (then topped up at random)."""
    rng = np.random.default_rng(seed)
    if n >= len(fs):
        return fs
    classes = [c for c in np.unique(fs.labels) if c >= 0]
    pools = [rng.permutation(np.flatnonzero(fs.labels == c)) for c in classes]
    picked: list[int] = []
    per = -(-n // max(len(pools), 1))
    for pool in pools:
        picked += pool[:per].tolist()
    picked = picked[:n] if len(picked) > n else picked
    if len(picked) < n:
        rest = np.setdiff1d(np.arange(len(fs)), picked)
        picked += rng.permutation(rest)[: n - len(picked)].tolist()
    idx = np.sort(np.asarray(picked, dtype=np.int64))
    return _take(fs, idx, " (class-balanced sample)")


def labelled_subset(fs: FaceSet, n: int | None, seed: int = 0) -> FaceSet:
    """The faces with a label the model has; a seeded random ``n`` of them when ``n`` is smaller."""
    idx = np.flatnonzero(fs.labels >= 0)
    if n is not None and n < len(idx):
        idx = np.sort(np.random.default_rng(seed).permutation(idx)[:n])
    return _take(fs, idx, "")


def _take(fs: FaceSet, idx: np.ndarray, note: str) -> FaceSet:
    return FaceSet(fs.faces[idx], fs.labels[idx], fs.dataset, fs.path, fs.split, fs.protocol + note)
