"""Train/test folds as index arrays into a FaceDataset: the official split, or subject-independent folds.

CK+ and JAFFE have no official split and many near-identical faces per subject: folds here never put one
subject on both sides. Indices cover every row; call ``ds.labelled()`` first to drop unusable faces.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError


class Fold(NamedTuple):
    """Sorted row indices of one fold (unpacks as ``train_idx, test_idx``)."""

    train: np.ndarray
    test: np.ndarray


def official(ds: FaceDataset, test: str = "test") -> list[Fold]:
    """The dataset's own split as one fold: ``train`` against ``test`` (or e.g. ``val``)."""
    if ds.split is None:
        raise DataError(f"{ds.name} has no official split; use subject_kfold or leave_one_subject_out")
    train, held = np.flatnonzero(ds.split == "train"), np.flatnonzero(ds.split == test)
    if not train.size or not held.size:
        raise DataError(f"{ds.name}: the official split has {train.size} train and {held.size} {test} faces")
    return [Fold(train, held)]


def _subjects(ds: FaceDataset) -> np.ndarray:
    if ds.subjects is None:
        raise DataError(f"{ds.name} has no subject ids; use its official split or a random split")
    return ds.subjects


def group_assign(groups: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of every row: whole groups per fold, class mix as even as the groups allow.

    Greedy, as in stratified group k-fold: groups with the most uneven class mix go first, each to the fold
    where the per-class shares across folds stay most even (ties: the smaller fold); no fold is left empty.
    """
    uniq, inv = np.unique(groups, return_inverse=True)
    if not 2 <= k <= len(uniq):
        raise DataError(f"cannot make {k} folds from {len(uniq)} subject(s); choose 2..{len(uniq)}")
    _, cls = np.unique(labels, return_inverse=True)
    hist = np.zeros((len(uniq), cls.max() + 1))
    np.add.at(hist, (inv, cls), 1)
    totals = hist.sum(axis=0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-hist[order].std(axis=1), kind="stable")]
    fold_hist = np.zeros((k, hist.shape[1]))
    assign = np.empty(len(uniq), dtype=np.int64)
    for done, g in enumerate(order):
        empty = np.flatnonzero(fold_hist.sum(axis=1) == 0)
        candidates = empty if len(order) - done <= len(empty) else range(k)
        best, best_key = -1, (np.inf, np.inf)
        for f in candidates:
            fold_hist[f] += hist[g]
            key = (float(np.std(fold_hist / totals, axis=0).mean()), float(fold_hist[f].sum()))
            fold_hist[f] -= hist[g]
            if key < best_key:
                best, best_key = f, key
        assign[g] = best
        fold_hist[best] += hist[g]
    return assign[inv]


def subject_kfold(ds: FaceDataset, k: int = 10, seed: int = 0) -> list[Fold]:
    """``k`` subject-independent folds, stratified by label as far as whole subjects allow."""
    fold = group_assign(_subjects(ds), ds.labels, k, seed)
    return [Fold(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]


def leave_one_subject_out(ds: FaceDataset) -> list[Fold]:
    """One fold per subject (in sorted subject order): that subject's faces against everyone else's."""
    subjects = _subjects(ds)
    return [Fold(np.flatnonzero(subjects != s), np.flatnonzero(subjects == s)) for s in np.unique(subjects)]


def validation_split(ds: FaceDataset, train_idx: np.ndarray, fraction: float = 0.1, seed: int = 0) -> Fold:
    """Carve a validation part (about ``fraction``) out of ``train_idx``: returns ``Fold(train, val)``.

    Subject-independent when the dataset has subjects (whole subjects move to validation), otherwise a
    random split stratified by label.
    """
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, got {fraction}")
    train_idx = np.sort(np.asarray(train_idx))
    labels = ds.labels[train_idx]
    if ds.subjects is not None:
        subjects = ds.subjects[train_idx]
        k = min(max(2, round(1 / fraction)), len(np.unique(subjects)))
        if k < 2:
            raise DataError(f"{ds.name}: one subject in the training fold; no subject-independent validation part")
        is_val = group_assign(subjects, labels, k, seed) == 0
    else:
        rng = np.random.default_rng(seed)
        is_val = np.zeros(len(train_idx), dtype=bool)
        for c in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == c))
            is_val[rows[: round(len(rows) * fraction)]] = True
    return Fold(train_idx[~is_val], train_idx[is_val])
