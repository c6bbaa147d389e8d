"""The real datasets under ../shared/data (skipped when absent): counts, subjects, labels, cache speed."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_edge.data import detect_layout, load_dataset, summary
from fer_edge.data.ferplus import FerPlusLayout
from fer_edge.data.imageio import ImageReadLog, read_gray
from fer_edge.data.rafdb import read_labels
from fer_edge.labels import EMOTIONS

pytestmark = pytest.mark.realdata

# FERPlus majority labels per split (neutral .. contempt, then no usable label)
FERPLUS_MAJORITY = {
    "train": [9360, 7408, 3368, 3418, 2395, 175, 651, 165, 1618],
    "val": [1241, 877, 441, 396, 314, 31, 70, 26, 183],
    "test": [1160, 908, 424, 424, 312, 20, 96, 27, 202],
}


@pytest.fixture(scope="module")
def ferplus_cache(ferplus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """FERPlus read once from its files into a fresh cache (the one slow read of the data suite)."""
    folder = tmp_path_factory.mktemp("ferplus-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_EDGE_CACHE", str(folder))
        start = time.perf_counter()
        ds = load_dataset(ferplus_dir)
        seconds = time.perf_counter() - start
    return {"ds": ds, "dir": folder, "first_load_s": seconds}


def test_ferplus_split_counts(ferplus_cache: dict) -> None:
    ds = ferplus_cache["ds"]
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [28_558, 3_579, 3_573]
    assert ds.image_size == (48, 48) and ds.channels == 1 and ds.soft.shape == (35_710, 8)
    assert not ds.problems


def test_ferplus_majority_counts(ferplus_cache: dict) -> None:
    counts = summary(ferplus_cache["ds"])["counts"]
    for split, want in FERPLUS_MAJORITY.items():
        got = [counts[split][c] for c in EMOTIONS] + [counts[split]["unlabelled"]]
        assert got == want, split


def test_ferplus_majority_matches_a_plain_recount(ferplus_dir: Path, ferplus_cache: dict) -> None:
    """The majority protocol recomputed in plain Python from label.csv gives the reader's labels."""
    ds = ferplus_cache["ds"]
    by_file = dict(zip(ds.files.tolist(), ds.labels.tolist(), strict=True))
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        with (ferplus_dir / folder / "label.csv").open(newline="") as fh:
            for row in csv.reader(fh):
                votes = [int(v) for v in row[2:]]
                top = max(votes)
                label = votes.index(top) if votes.count(top) == 1 and votes.index(top) < 8 else -1
                assert by_file[f"{folder}/{row[0]}"] == label, row


def test_ferplus_second_load_comes_from_the_cache(ferplus_dir: Path, ferplus_cache: dict,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The second load reads no image (the layout's reader is booby-trapped) and returns the same arrays; its time
    is printed, not asserted (speed belongs in benchmarks)."""
    monkeypatch.setenv("FER_EDGE_CACHE", str(ferplus_cache["dir"]))

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(FerPlusLayout, "read", no_read)
    start = time.perf_counter()
    ds = load_dataset(ferplus_dir)
    seconds = time.perf_counter() - start
    print(f"\nFERPlus: first load {ferplus_cache['first_load_s']:.1f} s, cached load {seconds:.2f} s")
    first = ferplus_cache["ds"]
    assert np.array_equal(ds.images, first.images) and np.array_equal(ds.labels, first.labels)
    assert np.array_equal(ds.soft, first.soft) and np.array_equal(ds.files, first.files)


def test_ckplus48(ckplus_dir: Path) -> None:
    assert detect_layout(ckplus_dir) == "ckplus48"
    ds = load_dataset(ckplus_dir)
    assert len(ds) == 981 and len(set(ds.subjects.tolist())) == 118
    assert len({f.split("/")[1].rsplit("_", 1)[0] for f in ds.files.tolist()}) == 327  # sequences
    assert ds.class_counts() == {"happiness": 207, "surprise": 249, "sadness": 84, "anger": 135, "disgust": 177,
                                 "fear": 75, "contempt": 54}
    assert ds.image_size == (48, 48) and ds.channels == 1 and not ds.problems


def test_jaffe(jaffe_dir: Path) -> None:
    assert detect_layout(jaffe_dir) == "jaffe"
    ds = load_dataset(jaffe_dir)
    assert len(ds) == 213 and sorted(set(ds.subjects.tolist())) == [
        "KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM"]
    assert ds.class_counts() == {"neutral": 30, "happiness": 31, "surprise": 30, "sadness": 31, "anger": 30,
                                 "disgust": 29, "fear": 32}
    assert ds.image_size == (96, 96) and ds.channels == 1
    assert 60 < ds.images.mean() < 200  # faces, not palette indices or black


def test_jaffe_palette_files_read_as_gray(jaffe_dir: Path) -> None:
    palette = [p for p in sorted(jaffe_dir.glob("*.tiff")) if Image.open(p).mode == "P"]
    assert len(palette) == 23
    for p in palette[:5]:
        assert np.array_equal(read_gray(p, ImageReadLog()), np.asarray(Image.open(p).convert("L")))


def test_rafdb_labels(rafdb_labels_dir: Path) -> None:
    assert detect_layout(rafdb_labels_dir) == "rafdb"
    raf = read_labels(rafdb_labels_dir)
    assert raf.counts() == {"train": 12_271, "test": 3_068}
    train = {c: int(np.sum((raf.labels == EMOTIONS.index(c)) & (raf.split == "train"))) for c in EMOTIONS}
    assert train == {"neutral": 2524, "happiness": 4772, "surprise": 1290, "sadness": 1982, "anger": 705,
                     "disgust": 717, "fear": 281, "contempt": 0}
