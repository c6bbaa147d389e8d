"""FERPlus: the official folder layout (FER2013Train/Valid/Test with label.csv holding 10 votes per image)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer_edge.data.imageio import ImageReadLog, Progress, read_all, read_gray
from fer_edge.data.registry import DATASETS
from fer_edge.data.textio import open_text
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import EMOTIONS

FOLDERS = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}
VOTE_COLUMNS = (*EMOTIONS, "unknown", "NF")  # label.csv order after name and box


def majority(votes: np.ndarray) -> np.ndarray:
    """Barsoum et al. majority protocol: the most-voted emotion; -1 for unknown / not-a-face winners and ties.

    votes: (N, 10) counts in ``VOTE_COLUMNS`` order.
    """
    top = votes.max(axis=1, keepdims=True)
    winners = votes == top
    label = votes.argmax(axis=1)
    ok = (winners.sum(axis=1) == 1) & (label < len(EMOTIONS)) & (top[:, 0] > 0)
    return np.where(ok, label, -1).astype(np.int64)


def soft_labels(votes: np.ndarray) -> np.ndarray:
    """Vote distribution over the 8 emotions (unknown and not-a-face votes dropped)."""
    emo = votes[:, : len(EMOTIONS)].astype(np.float32)
    return emo / np.clip(emo.sum(axis=1, keepdims=True), 1.0, None)


def read_label_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Names and (N, 10) vote counts of one label.csv; a malformed row is an error naming file and line."""
    names, votes = [], []
    with open_text(path) as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) != 12:
                raise DataError(f"{path}:{lineno}: expected 12 fields (name, box, 10 votes), got {len(row)}")
            try:
                v = [int(x) for x in row[2:]]
            except ValueError:
                raise DataError(f"{path}:{lineno}: votes must be integers, got {row[2:]}") from None
            if min(v) < 0 or sum(v) > 100:
                raise DataError(f"{path}:{lineno}: votes out of range: {v}")
            names.append(row[0].strip())
            votes.append(v)
    return names, np.asarray(votes, dtype=np.int64).reshape(-1, 12 - 2)


@DATASETS.register("ferplus")
class FerPlusLayout:
    version = 1
    priority = 10
    description = "FERPlus official layout: FER2013Train/Valid/Test/ with fer*.png and label.csv (10 votes)"

    def detect(self, path: Path) -> bool:
        return any((path / f / "label.csv").is_file() for f in FOLDERS)

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        log = ImageReadLog(strict=strict)
        paths, votes, split, files = [], [], [], []
        for folder, split_name in FOLDERS.items():
            csv_path = path / folder / "label.csv"
            if not csv_path.is_file():
                continue
            names, v = read_label_csv(csv_path)
            paths += [path / folder / name for name in names]
            votes.append(v)
            split += [split_name] * len(names)
            files += [f"{folder}/{name}" for name in names]
        images, kept = read_all(paths, lambda p: read_gray(p, log, size=(48, 48)), progress)
        if not images:
            raise DataError(f"{path}: FERPlus layout found but no readable images")
        vote_arr = np.concatenate(votes)[kept]
        return FaceDataset(
            name=self.name, root=str(path), images=np.stack(images)[..., None],
            labels=majority(vote_arr), classes=EMOTIONS, soft=soft_labels(vote_arr),
            split=np.asarray(split)[kept], files=np.asarray(files)[kept], problems=log.problems(),
        )
