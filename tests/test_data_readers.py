"""Every layout reader on tiny synthetic datasets in its exact on-disk layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import (
    FER_CODES,
    MAJORITY,
    MAKERS,
    RAF_LINES,
    face,
    fer2013_rows,
    make_ckplus,
    make_ckplus48,
    make_fer2013_csv,
    make_fer2013_folders,
    make_ferplus,
    make_ferplus_csv,
    make_imagefolder,
    make_jaffe,
    make_rafdb,
    make_rafdb_folders,
    write,
)

from fer_edge.data import DATASETS, detect_layout, layouts, load_dataset
from fer_edge.errors import DataError, FerEdgeError
from fer_edge.labels import EMOTIONS, index

SEVEN = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")


def load(path: Path, **kw: object):
    return load_dataset(path, cache=False, **kw)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_detection_is_unambiguous(tmp_path: Path, name: str) -> None:
    root = MAKERS[name](tmp_path / name)
    assert detect_layout(root) == name
    prio = {n: DATASETS.get(n).priority for n in layouts()}
    hits = [n for n in layouts() if DATASETS.get(n)().detect(root)]
    best = min(prio[n] for n in hits)
    assert [n for n in hits if prio[n] == best] == [name]  # equal priority never both match


def test_layouts_order_generic_last() -> None:
    order = layouts()
    assert order[-1] == "imagefolder"
    assert order.index("ferplus_csv") < order.index("fer2013")
    assert set(order) >= set(MAKERS)


def test_ferplus_folder_majority_and_soft(tmp_path: Path) -> None:
    ds = load(make_ferplus(tmp_path))
    assert len(ds) == 18 and ds.image_size == (48, 48) and ds.channels == 1
    assert ds.labels.tolist() == list(MAJORITY) * 3
    assert ds.classes == EMOTIONS
    assert np.allclose(ds.soft[1], [0, 0.7, 0.3, 0, 0, 0, 0, 0])
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [6, 6, 6]
    assert np.array_equal(ds.images[4, ..., 0], face(4))


def test_fer2013_csv(tmp_path: Path) -> None:
    ds = load(make_fer2013_csv(tmp_path / "fer2013.csv").parent)
    rows = fer2013_rows(14)
    assert len(ds) == 14 and ds.image_size == (48, 48)
    assert ds.labels.tolist() == [index(FER_CODES[e]) for e, _, _ in rows]
    assert np.array_equal(ds.images[5, ..., 0], rows[5][1])
    assert ds.split.tolist()[:3] == ["train", "val", "test"]
    assert ds.classes == SEVEN


def test_fer2013_csv_file_path_without_usage(tmp_path: Path) -> None:
    path = make_fer2013_csv(tmp_path / "train.csv", n=4, usage=False)
    assert detect_layout(path) == "fer2013"
    ds = load(path)
    assert len(ds) == 4 and ds.split is None


def test_ferplus_csv_pair_matches_votes(tmp_path: Path) -> None:
    ds = load(make_ferplus_csv(tmp_path))
    keep = [0, 1, 2, 4, 5]  # row 3 has no image name
    assert len(ds) == 5
    assert ds.labels.tolist() == [MAJORITY[i] for i in keep]
    assert ds.files.tolist()[:2] == ["FER2013Train/fer0000000.png", "FER2013Valid/fer0000001.png"]
    assert ds.split.tolist() == ["train", "val", "test", "val", "test"]
    assert np.array_equal(ds.images[3, ..., 0], fer2013_rows(6)[4][1])
    assert np.allclose(ds.soft.sum(axis=1)[ds.labels >= 0], 1)
    assert load(tmp_path / "fer2013new.csv").labels.tolist() == ds.labels.tolist()  # the new csv's path works too


def test_ferplus_csv_same_as_folder_reader(tmp_path: Path, ferplus_dir: Path) -> None:
    """40 real FERPlus test faces as the csv pair read back exactly like the same faces in the folder layout."""
    import shutil

    import cv2

    from fer_edge.data.ferplus import read_label_csv

    names, votes = read_label_csv(ferplus_dir / "FER2013Test" / "label.csv")
    names, votes = names[:40], votes[:40]
    folder = tmp_path / "folder" / "FER2013Test"
    folder.mkdir(parents=True)
    rows = (ferplus_dir / "FER2013Test" / "label.csv").read_text().splitlines()[:40]
    (folder / "label.csv").write_text("\n".join(rows) + "\n")
    pixels = []
    for n in names:
        shutil.copy(ferplus_dir / "FER2013Test" / n, folder / n)
        pixels.append(" ".join(map(str, cv2.imread(str(folder / n), cv2.IMREAD_GRAYSCALE).ravel())))
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "".join(f"0,{p},PrivateTest\n" for p in pixels))
    new = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    new += [f"PrivateTest,{n}," + ",".join(map(str, v)) for n, v in zip(names, votes, strict=True)]
    (pair / "fer2013new.csv").write_text("\n".join(new) + "\n")
    got, want = load(pair), load(tmp_path / "folder")
    assert got.name == "ferplus_csv" and want.name == "ferplus"
    assert got.files.tolist() == want.files.tolist()
    assert np.array_equal(got.images, want.images)
    assert np.array_equal(got.labels, want.labels) and (got.labels >= 0).sum() > 30
    assert np.allclose(got.soft, want.soft)


@pytest.mark.parametrize("val", ["val", "validation", None])
def test_fer2013_folders(tmp_path: Path, val: str | None) -> None:
    ds = load(make_fer2013_folders(tmp_path, val=val))
    n_splits = 3 if val else 2
    assert len(ds) == 7 * 2 * n_splits + 1
    assert ds.image_size == (48, 48) and ds.channels == 1  # the 64x64 jpg was resized
    assert set(ds.split.tolist()) == ({"train", "test", "val"} if val else {"train", "test"})
    assert ds.classes == SEVEN
    assert ds.class_counts()["happiness"] == 2 * n_splits + 1


def test_rafdb(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path)
    red_bgr = np.zeros((100, 100, 3), np.uint8)
    red_bgr[..., 2] = 255
    write(root / "Image" / "aligned" / "train_00001_aligned.jpg", red_bgr)
    ds = load(root)
    assert len(ds) == len(RAF_LINES) and ds.image_size == (100, 100) and ds.channels == 3
    raf = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
    assert ds.labels.tolist() == [index(raf[c]) for _, c in RAF_LINES]
    assert ds.split.tolist() == ["train"] * 4 + ["test"] * 3
    assert ds.files[0] == "Image/aligned/train_00001_aligned.jpg"
    assert ds.subjects is None and ds.classes == SEVEN
    assert np.abs(ds.images[0].mean(axis=(0, 1)) - (255, 0, 0)).max() < 8  # RGB order, not BGR


def test_rafdb_without_images_says_so(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path, images=False)
    with pytest.raises(DataError, match=r"labels read \(4 train / 3 test\) but Image/aligned/ is missing"):
        load(root)


def test_rafdb_missing_image_is_a_problem(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path)
    (root / "Image" / "aligned" / "test_0002_aligned.jpg").unlink()
    ds = load(root)
    assert len(ds) == 6
    assert ds.problems[0] == "1 unreadable image(s) skipped" and "missing file" in ds.problems[1]
    with pytest.raises(DataError, match=r"test_0002_aligned\.jpg: missing file"):
        load(root, strict=True)


def test_rafdb_folders(tmp_path: Path) -> None:
    root = make_rafdb_folders(tmp_path)
    ds = load(root)
    assert detect_layout(root / "DATASET") == "rafdb_folders"
    assert len(ds) == 21 and ds.image_size == (100, 100) and ds.channels == 3
    assert int((ds.split == "train").sum()) == 14
    assert ds.class_counts() == dict.fromkeys(SEVEN, 3)
    assert ds.labels[ds.files.tolist().index("train/1/train_00000_aligned.jpg")] == index("surprise")


def test_jaffe_subjects_and_palette(tmp_path: Path) -> None:
    ds = load(make_jaffe(tmp_path))
    assert len(ds) == 28 and ds.image_size == (96, 96) and ds.channels == 1
    assert sorted(set(ds.subjects.tolist())) == ["KA", "KL", "KM", "NA"]
    assert ds.class_counts() == dict.fromkeys(SEVEN, 4)
    assert ds.labels[ds.files.tolist().index("KA.AN1.0.tiff")] == index("anger")


def test_jaffe_palette_gray_is_decoded_through_the_palette(tmp_path: Path) -> None:
    from fer_edge.data.imageio import ImageReadLog, read_gray

    make_jaffe(tmp_path, subjects=("KA",))
    img = read_gray(tmp_path / "KA.AN1.0.tiff", ImageReadLog())
    assert np.array_equal(img, face(0, 256))  # raw palette indices would be 255 - face


def test_ckplus48(tmp_path: Path) -> None:
    ds = load(make_ckplus48(tmp_path))
    assert len(ds) == 63 and ds.image_size == (48, 48)
    assert sorted(set(ds.subjects.tolist())) == [f"S{i:03d}" for i in range(10, 16)]
    assert "neutral" not in ds.classes and "contempt" in ds.classes and len(ds.classes) == 7
    i = ds.files.tolist().index("contempt/S011_002_00000017.png")
    assert ds.labels[i] == index("contempt") and ds.subjects[i] == "S011"


@pytest.mark.parametrize("neutral_first", [False, True])
def test_ckplus_original_tree(tmp_path: Path, neutral_first: bool) -> None:
    ds = load(make_ckplus(tmp_path), options={"neutral_first": neutral_first})
    per_seq = 4 if neutral_first else 3  # 4 labelled sequences of 5 frames; S010/002 has no emotion file
    assert len(ds) == 4 * per_seq and ds.image_size == (96, 96) and ds.channels == 1
    files = ds.files.tolist()
    assert "cohn-kanade-images/S005/001/S005_001_00000005.png" in files
    assert "cohn-kanade-images/S005/001/S005_001_00000002.png" not in files
    assert not any("/S010/002/" in f for f in files)
    assert ds.labels[files.index("cohn-kanade-images/S005/002/S005_002_00000004.png")] == index("happiness")
    assert sorted(set(ds.subjects.tolist())) == ["S005", "S010", "S011"]
    first = "cohn-kanade-images/S011/004/S011_004_00000001.png"
    assert (first in files) == neutral_first
    assert ("neutral" in ds.classes) == neutral_first
    assert any("centred square" in p for p in ds.problems)  # noise has no face in it


def test_ckplus_malformed_emotion_file(tmp_path: Path) -> None:
    root = make_ckplus(tmp_path)
    bad = root / "Emotion" / "S005" / "001" / "S005_001_00000005_emotion.txt"
    bad.write_text("happy\n")
    with pytest.raises(DataError, match=r"S005_001_00000005_emotion.txt:1: expected one emotion code 0..7"):
        load(root)


@pytest.mark.parametrize("splits", [False, True])
def test_imagefolder(tmp_path: Path, splits: bool) -> None:
    ds = load(make_imagefolder(tmp_path, splits=splits))
    assert len(ds) == (16 if splits else 8) and ds.image_size == (64, 64) and ds.channels == 3
    assert ds.classes == ("neutral", "happiness", "sadness", "anger")
    assert (ds.split is not None) == splits
    if splits:
        assert set(ds.split.tolist()) == {"train", "val"}


def test_imagefolder_gray_from_first_image_and_resized(tmp_path: Path) -> None:
    write(tmp_path / "happy" / "a.png", face(1, 40))
    write(tmp_path / "surprise" / "b.jpg", face(2, 80, channels=3))
    ds = load(tmp_path)
    assert ds.name == "imagefolder" and ds.image_size == (40, 40) and ds.channels == 1


def test_corrupt_images_are_skipped_and_counted(tmp_path: Path) -> None:
    root = make_ckplus48(tmp_path)
    for i, f in enumerate(sorted((root / "anger").iterdir())[:7]):
        f.write_bytes(b"not a png" * i)
    ds = load(root)
    assert len(ds) == 63 - 7
    assert ds.problems[0] == "7 unreadable image(s) skipped"
    assert len(ds.problems) == 1 + 5  # count + the first five paths
    with pytest.raises(DataError, match="not a readable image"):
        load(root, strict=True)


@pytest.mark.parametrize(
    ("make", "breakage", "message"),
    [
        (make_ferplus, lambda r: _append(r / "FER2013Valid" / "label.csv", "fer9.png,(0 0 48 48),1,2\n"),
         r"FER2013Valid/label.csv:7: expected 12 fields"),
        (lambda p: make_fer2013_csv(p / "fer2013.csv").parent,
         lambda r: _append(r / "fer2013.csv", "3,1 2 3,Training\n"), r"fer2013.csv:16: pixels must be 2304"),
        (lambda p: make_fer2013_csv(p / "fer2013.csv").parent,
         lambda r: _append(r / "fer2013.csv", "9," + " ".join(["0"] * 2304) + ",Training\n"),
         r"fer2013.csv:16: emotion must be 0..6"),
        (make_ferplus_csv, lambda r: _append(r / "fer2013new.csv", "Training,fer7.png,1,x,0,0,0,0,0,0,0,0\n"),
         r"fer2013new.csv:8: votes must be integers"),
        (make_rafdb, lambda r: _append(r / "EmoLabel" / "list_patition_label.txt", "train_09.jpg 9\n"),
         r"list_patition_label.txt:8: label must be 1..7"),
        (make_rafdb, lambda r: _append(r / "EmoLabel" / "list_patition_label.txt", "val_1.jpg 2\n"),
         r"list_patition_label.txt:8: image name 'val_1.jpg' starts with neither"),
    ],
)
def test_malformed_label_rows_name_file_and_line(tmp_path: Path, make, breakage, message: str) -> None:
    root = make(tmp_path)
    breakage(root)
    with pytest.raises(DataError, match=message):
        load(root)


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_forced_format_must_match(tmp_path: Path) -> None:
    root = make_ckplus48(tmp_path)
    assert load(root, format="imagefolder").name == "imagefolder"  # a specific layout is also class folders
    with pytest.raises(DataError, match="does not look like the jaffe layout"):
        load(root, format="jaffe")
    with pytest.raises(FerEdgeError, match=r"Did you mean .jaffe."):
        load(root, format="jafe")


def test_unknown_layout_names_the_layouts_tried(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "misc").mkdir()
    with pytest.raises(DataError, match=r"unknown dataset layout; tried .*ferplus.*imagefolder"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        detect_layout(tmp_path / "absent")


def test_progress_callback_reaches_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    load(make_ckplus48(tmp_path), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (63, 63) and all(d <= t for d, t in calls)
    calls.clear()
    load(make_fer2013_csv(tmp_path / "csv" / "fer2013.csv").parent, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (14, 14)
