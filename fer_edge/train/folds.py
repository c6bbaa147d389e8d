"""Finding a stage's data and cutting it so that scores mean something: official splits, subject-independent folds,
and subject-held-out validation parts (a test subject never trains or validates)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fer_edge.data import splits
from fer_edge.data.types import FaceDataset
from fer_edge.dataroot import data_roots
from fer_edge.errors import DataError, FerEdgeError
from fer_edge.train.config import STAGES


def resolve_data(name: str, given: Mapping[str, str] | None = None) -> Path:
    """The folder of one stage's dataset: ``--data name=PATH``, else the first data root holding it."""
    spec = STAGES.get(name)
    if given and name in given:
        p = Path(given[name])
        if not p.exists():
            raise DataError(f"--data {name}={p}: no such file or folder")
        return p
    for root in data_roots():
        if (root / spec.folder).exists():
            return root / spec.folder
    looked = ", ".join(str(r / spec.folder) for r in data_roots())
    raise DataError(f"no {name} data found (looked in {looked}); pass --data {name}=PATH or set FER_EDGE_DATA")


def load_stage_data(name: str, path: Path, limit: int | None, seed: int) -> FaceDataset:
    """Read a stage's dataset (layout auto-detected), optionally cut to ``limit`` labelled faces per split."""
    from fer_edge.data import load_dataset

    ds = load_dataset(path).labelled()
    if len(ds) == 0:
        raise DataError(f"{path}: no labelled faces")
    return subset(ds, limit, seed) if limit else ds


def subset(ds: FaceDataset, limit: int, seed: int) -> FaceDataset:
    """At most ``limit`` faces per official split (or overall), drawn at random but reproducibly."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(ds))] if ds.split is None else [np.flatnonzero(ds.split == s) for s in np.unique(ds.split)]
    keep = [g if len(g) <= limit else np.sort(rng.choice(g, limit, replace=False)) for g in groups]
    return ds.take(np.sort(np.concatenate(keep)))


def cv_folds(ds: FaceDataset, protocol: str, k: int | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-independent (train_idx, test_idx) folds (``fer_edge.data.splits``): leave-one-subject-out when
    ``protocol`` is loso and no ``k`` is given, else k-fold by subject. No subject is ever on both sides."""
    if ds.subjects is None:
        raise DataError(f"{ds.name}: subject-independent folds need subject ids, and its reader gives none")
    n_subj = len(np.unique(ds.subjects))
    if protocol == "kfold" and k is None:
        raise FerEdgeError("k-fold needs a number of folds")
    if k is not None and n_subj < k:
        raise DataError(f"{ds.name}: {n_subj} subjects, fewer than the {k} folds asked for (--folds)")
    if n_subj < 3:
        raise DataError(f"{ds.name}: {n_subj} subjects; subject-independent folds need at least 3")
    folds = splits.leave_one_subject_out(ds) if k is None else splits.subject_kfold(ds, k, seed)
    out = [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in folds]
    for tr, te in out:
        if set(ds.subjects[tr].tolist()) & set(ds.subjects[te].tolist()):
            raise FerEdgeError(f"{ds.name}: a fold shares subjects between train and test")
    return out


def subject_holdout(ds: FaceDataset, idx: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (train, val): whole subjects (label mix kept even) go to validation, or a random
    label-stratified part when the dataset has no subject ids."""
    idx = np.asarray(idx)
    if ds.subjects is not None and len(np.unique(ds.subjects[idx])) < 2:
        raise DataError(f"{ds.name}: one training subject; cannot hold a subject out for validation")
    tr, va = splits.validation_split(ds, idx, fraction, seed)
    if len(va) == 0 or len(tr) == 0:
        raise DataError(f"{ds.name}: too few faces ({len(idx)}) to hold out a validation part")
    return np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64)


def official_parts(ds: FaceDataset, fraction: float, seed: int) -> tuple[FaceDataset, FaceDataset, FaceDataset]:
    """(train, val, test) from the official split; without a val split, part of train is held out."""
    if ds.split is None or not (ds.split == "test").any():
        raise DataError(f"{ds.name}: no official test split to score on")
    train_idx = np.flatnonzero(ds.split == "train")
    if len(train_idx) == 0:
        raise DataError(f"{ds.name}: the official split has no training faces")
    val_idx = np.flatnonzero(ds.split == "val")
    if len(val_idx) == 0:
        train_idx, val_idx = subject_holdout(ds, train_idx, fraction, seed)
    return ds.take(train_idx), ds.take(val_idx), ds.take(ds.split == "test")
