"""Folds: official, subject k-fold and leave-one-subject-out never put a subject on both sides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import make_ferplus

from fer_edge.data import load_dataset
from fer_edge.data.splits import leave_one_subject_out, official, subject_kfold, validation_split
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError


def synthetic(n_subjects: int = 12, per_subject: int = 9, seed: int = 0) -> FaceDataset:
    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"S{i:03d}" for i in range(n_subjects)], per_subject)
    labels = rng.integers(0, 7, size=subjects.size)
    images = np.zeros((subjects.size, 4, 4, 1), np.uint8)
    return FaceDataset(name="synthetic", root="-", images=images, labels=labels,
                       classes=("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"),
                       subjects=subjects)


def assert_partition(ds: FaceDataset, folds: list) -> None:  # type: ignore[type-arg]
    """Each fold: train and test disjoint in rows and subjects and cover all rows; tests cover rows once."""
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(ds)))
    for train, test in folds:
        assert len(test) and len(train) + len(test) == len(ds)
        assert not set(ds.subjects[train]) & set(ds.subjects[test])


@pytest.mark.parametrize("k", [2, 5, 12])
def test_subject_kfold_partitions_by_subject(k: int) -> None:
    ds = synthetic()
    folds = subject_kfold(ds, k=k, seed=1)
    assert len(folds) == k
    assert_partition(ds, folds)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 2 * 9  # whole subjects of 9 faces; greedy keeps folds near equal


def test_subject_kfold_is_seeded() -> None:
    ds = synthetic()
    a, b, c = (subject_kfold(ds, 4, seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a, c, strict=True))


def test_subject_kfold_stratifies() -> None:
    """Two kinds of subject (all class 0 / all class 1): each of 2 folds gets both kinds."""
    subjects = np.repeat([f"S{i}" for i in range(8)], 5)
    labels = np.repeat([0, 1] * 4, 5)
    ds = FaceDataset(name="s", root="-", images=np.zeros((40, 2, 2, 1), np.uint8), labels=labels,
                     classes=("neutral", "happiness"), subjects=subjects)
    for _, test in subject_kfold(ds, 2, seed=0):
        assert np.bincount(labels[test], minlength=2).tolist() == [10, 10]


def test_leave_one_subject_out() -> None:
    ds = synthetic(n_subjects=5)
    folds = leave_one_subject_out(ds)
    assert len(folds) == 5
    assert_partition(ds, folds)
    assert [set(ds.subjects[f.test]) for f in folds] == [{f"S{i:03d}"} for i in range(5)]


def test_validation_split_is_subject_independent() -> None:
    ds = synthetic(n_subjects=20)
    train, _ = subject_kfold(ds, 5)[0]
    fit, val = validation_split(ds, train, fraction=0.2, seed=0)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert not set(ds.subjects[fit]) & set(ds.subjects[val])
    assert 0.1 < len(val) / len(train) < 0.35


def test_validation_split_without_subjects_is_stratified(tmp_path: Path) -> None:
    ds = load_dataset(make_ferplus(tmp_path))
    ds = ds.take(np.repeat(np.arange(len(ds)), 10))  # 60 train rows, 10 per vote pattern
    train = np.flatnonzero(ds.split == "train")
    fit, val = validation_split(ds, train, fraction=0.3, seed=0)
    assert len(val) == 18 and not set(fit) & set(val)
    assert sorted(np.unique(ds.labels[val], return_counts=True)[1].tolist()) == [3, 3, 3, 9]


def test_official_split(tmp_path: Path) -> None:
    ds = load_dataset(make_ferplus(tmp_path))
    [(train, test)] = official(ds)
    assert set(ds.split[train]) == {"train"} and set(ds.split[test]) == {"test"}
    [(_, val)] = official(ds, test="val")
    assert set(ds.split[val]) == {"val"}


def test_errors_are_one_line_data_errors() -> None:
    ds = synthetic(n_subjects=3)
    with pytest.raises(DataError, match="cannot make 4 folds from 3 subject"):
        subject_kfold(ds, 4)
    with pytest.raises(DataError, match="no official split"):
        official(ds)
    no_subjects = FaceDataset(name="x", root="-", images=np.zeros((2, 2, 2, 1), np.uint8),
                              labels=np.array([0, 1]), classes=("neutral", "happiness"))
    with pytest.raises(DataError, match="no subject ids"):
        leave_one_subject_out(no_subjects)


@pytest.mark.realdata
def test_ckplus48_ten_fold_without_subject_leakage(ckplus_dir: Path) -> None:
    ds = load_dataset(ckplus_dir)
    folds = subject_kfold(ds, k=10, seed=0)
    assert_partition(ds, folds)
    for train, test in folds:
        assert set(np.unique(ds.labels[test])) <= set(np.unique(ds.labels[train]))
        fit, val = validation_split(ds, train, fraction=0.1)
        assert not set(ds.subjects[fit]) & set(ds.subjects[val]) and len(val)
    sizes = sorted(len(f.test) for f in folds)
    assert sizes[0] >= 70 and sizes[-1] <= 130  # 981 faces in 10 folds of whole subjects


@pytest.mark.realdata
def test_jaffe_leave_one_subject_out(jaffe_dir: Path) -> None:
    ds = load_dataset(jaffe_dir)
    folds = leave_one_subject_out(ds)
    assert len(folds) == 10
    assert_partition(ds, folds)
    assert all(19 <= len(f.test) <= 23 for f in folds)
