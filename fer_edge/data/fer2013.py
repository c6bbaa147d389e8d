"""FER2013: the original Kaggle ``fer2013.csv`` (emotion, pixels, Usage), 48x48 gray faces as text."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_edge.data.common import build
from fer_edge.data.imageio import Progress
from fer_edge.data.registry import DATASETS
from fer_edge.data.textio import ENCODING, open_text
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import index

CSV_NAME = "fer2013.csv"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # the csv's emotion 0..6
TO_CANONICAL = np.array([index(c) for c in CLASSES], dtype=np.int64)
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
COLUMNS = ("emotion", "pixels")


def count_lines(path: Path) -> int:
    """Newlines in a file (a fast binary scan, for a progress total)."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def parse_pixels(text: str, where: str) -> np.ndarray:
    """A 48x48 uint8 image from the space-separated ``pixels`` field; DataError naming ``where`` if malformed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.int16, sep=" ")
        except (ValueError, DeprecationWarning):
            values = np.empty(0, dtype=np.int16)
    if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixels must be {SIDE * SIDE} integers 0..255")
    return values.astype(np.uint8).reshape(SIDE, SIDE)


def csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a headed csv; DataError if a required column is missing or a row is short."""
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        lost = [c for c in required if c not in header]
        if lost:
            raise DataError(f"{path}:1: missing column(s) {', '.join(lost)}; header is {','.join(header)}")
        for row in reader:
            if not row or not any(f.strip() for f in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields, got {len(row)}")
            yield reader.line_num, dict(zip(header, row, strict=True))


def split_of(usage: str, where: str) -> str:
    if usage.strip() not in USAGE:
        raise DataError(f"{where}: unknown Usage {usage!r}; expected {', '.join(USAGE)}")
    return USAGE[usage.strip()]


def read_fer2013_csv(
    path: Path, progress: Progress | None = None
) -> tuple[list[np.ndarray], np.ndarray, list[str] | None]:
    """Images, FER2013 emotion codes (0..6) and splits (None without a Usage column) of a fer2013.csv."""
    total = max(count_lines(path) - 1, 0) if progress else 0
    if progress:
        progress(0, total)
    images, emotions, splits = [], [], []
    has_usage = None
    for n, (line, row) in enumerate(csv_rows(path, COLUMNS), start=1):
        where = f"{path}:{line}"
        if has_usage is None:
            has_usage = "Usage" in row
        try:
            emotion = int(row["emotion"])
        except ValueError:
            raise DataError(f"{where}: emotion must be an integer 0..6, got {row['emotion']!r}") from None
        if not 0 <= emotion < len(CLASSES):
            raise DataError(f"{where}: emotion must be 0..6, got {emotion}")
        images.append(parse_pixels(row["pixels"], where))
        emotions.append(emotion)
        if has_usage:
            splits.append(split_of(row["Usage"], where))
        if progress and (n % 256 == 0):
            progress(n, max(total, n))
    if progress:
        progress(len(images), len(images))
    return images, np.asarray(emotions, dtype=np.int64), splits if has_usage else None


def header(path: Path) -> list[str]:
    """Column names on the first line of a csv file ([] if unreadable)."""
    try:  # the first line alone: a bad byte further down is reported by the reader, naming its line
        with path.open("rb") as fh:
            first = fh.readline(1 << 16).decode(ENCODING)
        return [h.strip() for h in next(csv.reader([first]), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def find_csv(path: Path, name: str, columns: tuple[str, ...]) -> Path | None:
    """The csv to read: ``path`` itself if it is a csv with ``columns``, else ``path/name`` if present."""
    if path.is_file():
        ok = path.suffix.lower() == ".csv" and set(columns) <= set(header(path))
        return path if ok else None
    candidate = path / name
    return candidate if candidate.is_file() else None


@DATASETS.register("fer2013")
class Fer2013Layout:
    version = 1
    priority = 20  # after ferplus_csv: a folder holding fer2013new.csv too is FERPlus
    description = "FER2013 Kaggle csv: fer2013.csv (emotion 0..6, pixels, Usage) alone, 48x48 gray"

    def detect(self, path: Path) -> bool:
        return find_csv(path, CSV_NAME, COLUMNS) is not None

    def sources(self, path: Path) -> list[Path]:
        """The csv file (what the cache fingerprints)."""
        return [find_csv(path, CSV_NAME, COLUMNS) or path]

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        csv_path = find_csv(path, CSV_NAME, COLUMNS)
        if csv_path is None:
            raise DataError(f"{path}: no {CSV_NAME}")
        images, emotions, splits = read_fer2013_csv(csv_path, progress)
        files = [f"{csv_path.name}#{i}" for i in range(len(images))]
        return build(self.name, path, images, TO_CANONICAL[emotions], CLASSES, split=splits, files=files)
