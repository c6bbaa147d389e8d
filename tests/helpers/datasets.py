"""Tiny synthetic datasets in every layout fer_edge.data reads, written into a test's tmp_path.

Images are seeded noise (distinct per face, so round trips can compare pixels); names, folders and label
files follow each dataset's real layout exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FER_CODES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer2013.csv emotion 0..6
VOTE_HEADER = "neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def face(seed: int, h: int = 48, w: int | None = None, channels: int = 1) -> np.ndarray:
    """A distinct noise image: (h, w) gray or (h, w, 3)."""
    rng = np.random.default_rng(seed)
    shape = (h, w or h) if channels == 1 else (h, w or h, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, img)
    assert ok, path
    path.write_bytes(data.tobytes())
    return path


# --- FERPlus -----------------------------------------------------------------------------------------------
# (votes over neutral..contempt, unknown, NF) chosen to hit each case of the majority protocol
VOTES = (
    (10, 0, 0, 0, 0, 0, 0, 0, 0, 0),  # neutral
    (0, 7, 3, 0, 0, 0, 0, 0, 0, 0),  # happiness
    (0, 0, 0, 0, 0, 0, 0, 6, 2, 2),  # contempt
    (5, 5, 0, 0, 0, 0, 0, 0, 0, 0),  # tie -> -1
    (1, 0, 0, 0, 0, 0, 0, 0, 9, 0),  # unknown wins -> -1
    (0, 0, 0, 0, 2, 0, 0, 0, 0, 8),  # not a face -> -1
)
MAJORITY = (0, 1, 7, -1, -1, -1)


def make_ferplus(root: Path) -> Path:
    """FER2013Train/Valid/Test with fer*.png and label.csv; 6 faces train, 6 val, 6 test."""
    n = 0
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        rows = []
        for votes in VOTES:
            name = f"fer{n:07d}.png"
            write(root / folder / name, face(n))
            rows.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
            n += 1
        (root / folder / "label.csv").write_text("\n".join(rows) + "\n")
    return root


def make_bar_ferplus(root: Path, sizes: tuple[int, int, int] = (2400, 480, 480)) -> Path:
    """A FERPlus folder (Train/Valid/Test of ``sizes``) of 48x48 synthetic 'faces' a model can learn: a bar whose
    angle is one of the 8 classes, at a random place, plus noise; every face has 10 votes for its class."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    for folder, n in zip(("FER2013Train", "FER2013Valid", "FER2013Test"), sizes, strict=True):
        (root / folder).mkdir(parents=True)
        rows = []
        for i in range(n):
            c = i % 8
            a = np.pi * c / 8
            cy, cx = rng.uniform(16, 32, 2)
            u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
            v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
            img = rng.normal(70, 20, (48, 48)) + 150 * np.exp(-(u / 9) ** 4 - (v / 2.5) ** 2)
            cv2.imwrite(str(root / folder / f"fer{i:05d}.png"), np.clip(img, 0, 255).astype(np.uint8))
            votes = [0] * 10
            votes[c] = 10
            rows.append(f'fer{i:05d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
        (root / folder / "label.csv").write_text("\n".join(rows) + "\n")
    return root


def fer2013_rows(n: int) -> list[tuple[int, np.ndarray, str]]:
    usage = ("Training", "PublicTest", "PrivateTest")
    return [(i % 7, face(100 + i), usage[i % 3]) for i in range(n)]


def make_fer2013_csv(path: Path, n: int = 14, usage: bool = True) -> Path:
    """fer2013.csv with ``n`` rows (emotion cycles 0..6, Usage cycles Training/PublicTest/PrivateTest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["emotion,pixels,Usage" if usage else "emotion,pixels"]
    for emotion, img, use in fer2013_rows(n):
        pixels = " ".join(map(str, img.ravel()))
        lines.append(f"{emotion},{pixels},{use}" if usage else f"{emotion},{pixels}")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_ferplus_csv(root: Path) -> Path:
    """fer2013.csv (6 rows) + fer2013new.csv whose 4th row has no image name (skipped)."""
    make_fer2013_csv(root / "fer2013.csv", n=6)
    usage = ("Training", "PublicTest", "PrivateTest")
    lines = [f"Usage,Image name,{VOTE_HEADER}"]
    for i, votes in enumerate(VOTES):
        name = "" if i == 3 else f"fer{i:07d}.png"
        lines.append(f"{usage[i % 3]},{name}," + ",".join(map(str, votes)))
    (root / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    return root


def make_fer2013_folders(root: Path, per_class: int = 2, val: str | None = "val") -> Path:
    """train/ test/ [val/] /<angry..surprise>/*.png, 48x48 gray (plus one 64x64 jpg to be resized)."""
    n = 0
    for split in ("train", "test", *((val,) if val else ())):
        for cls in FER_CODES:
            for _ in range(per_class):
                write(root / split / cls / f"im{n}.png", face(n))
                n += 1
    write(root / "train" / "happy" / "big.jpg", face(999, 64))
    return root


# --- RAF-DB --------------------------------------------------------------------------------------------------
RAF_LINES = (("train_00001.jpg", 5), ("train_00002.jpg", 4), ("train_00003.jpg", 1), ("train_00004.jpg", 7),
             ("test_0001.jpg", 6), ("test_0002.jpg", 2), ("test_0003.jpg", 3))


def make_rafdb(root: Path, images: bool = True) -> Path:
    """EmoLabel/list_patition_label.txt + Image/aligned/<stem>_aligned.jpg (100x100 RGB)."""
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {c}\n" for n, c in RAF_LINES))
    if images:
        for i, (name, _) in enumerate(RAF_LINES):
            write(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), face(i, 100, channels=3))
    return root


def make_rafdb_folders(root: Path) -> Path:
    """DATASET/train/1..7/*.jpg and DATASET/test/1..7/*.jpg (2 + 1 faces per class)."""
    n = 0
    for split, count in (("train", 2), ("test", 1)):
        for code in range(1, 8):
            for _ in range(count):
                write(root / "DATASET" / split / str(code) / f"{split}_{n:05d}_aligned.jpg", face(n, 100, channels=3))
                n += 1
    return root


# --- JAFFE / CK+ ---------------------------------------------------------------------------------------------
JAFFE_CODES = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")


def make_jaffe(root: Path, subjects: tuple[str, ...] = ("KA", "KL", "KM", "NA")) -> Path:
    """Flat KA.AN1.39.tiff files, 256x256 gray; each subject's first file is a palette image (inverted palette)."""
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    for s in subjects:
        for j, code in enumerate(JAFFE_CODES):
            img = face(n, 256)
            path = root / f"{s}.{code}{j % 3 + 1}.{n}.tiff"
            if j == 0:
                save_palette_gray(path, img)
            else:
                Image.fromarray(img, "L").save(path)
            n += 1
    return root


def save_palette_gray(path: Path, gray: np.ndarray) -> None:
    """Store ``gray`` as a palette TIFF whose indices are 255 - gray and whose palette maps i -> 255 - i."""
    im = Image.fromarray((255 - gray).astype(np.uint8), "P")
    im.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    im.save(path)


def make_ckplus48(root: Path) -> Path:
    """<class>/S<subject>_<seq>_<frame>.png, 3 frames per sequence, 6 subjects over the 7 classes."""
    classes = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    n = 0
    for s in range(6):
        for k, cls in enumerate(classes):
            if (s + k) % 2:
                continue
            for frame in range(3):
                write(root / cls / f"S{10 + s:03d}_{k + 1:03d}_{17 + frame:08d}.png", face(n))
                n += 1
    return root


def make_ckplus(root: Path) -> Path:
    """cohn-kanade-images/S00x/00y/*.png (5 frames, 120x160) + Emotion/.../*_emotion.txt for all but one sequence."""
    codes = {("S005", "001"): 3, ("S005", "002"): 5, ("S010", "001"): 7, ("S010", "002"): None, ("S011", "004"): 1}
    n = 0
    for (subject, seq), code in codes.items():
        for frame in range(1, 6):
            write(root / "cohn-kanade-images" / subject / seq / f"{subject}_{seq}_{frame:08d}.png", face(n, 120, 160))
            n += 1
        if code is not None:
            txt = root / "Emotion" / subject / seq / f"{subject}_{seq}_{5:08d}_emotion.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text(f"   {code:.7e}\n")
    return root


def make_imagefolder(root: Path, splits: bool = False) -> Path:
    """<root>/[train|validation/]<Happy|sad|Angry|neutral>/*.jpg, 64x64 colour."""
    groups = ("train", "validation") if splits else ("",)
    n = 0
    for g in groups:
        for cls in ("Happy", "sad", "Angry", "neutral"):
            for _ in range(2):
                write(root / g / cls / f"img{n}.png", face(n, 64, channels=3))
                n += 1
    return root


MAKERS: dict[str, Callable[[Path], Path]] = {
    "ferplus": make_ferplus,
    "ferplus_csv": make_ferplus_csv,
    "fer2013": lambda p: make_fer2013_csv(p / "fer2013.csv").parent,
    "fer2013_folders": make_fer2013_folders,
    "rafdb": make_rafdb,
    "rafdb_folders": make_rafdb_folders,
    "jaffe": make_jaffe,
    "ckplus48": make_ckplus48,
    "ckplus": make_ckplus,
    "imagefolder": make_imagefolder,
}
