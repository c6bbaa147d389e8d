"""FERPlus from the original csv pair: fer2013.csv (pixels) + fer2013new.csv (Usage, Image name, 10 votes).

Rows of the two files correspond one to one; rows with an empty image name have no FERPlus face and are
skipped, as Microsoft's generate_training_data.py does. Labels follow the folder layout: majority + soft.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.data.common import build
from fer_edge.data.fer2013 import COLUMNS, CSV_NAME, csv_rows, find_csv, read_fer2013_csv, split_of
from fer_edge.data.ferplus import VOTE_COLUMNS, majority, soft_labels
from fer_edge.data.imageio import Progress
from fer_edge.data.registry import DATASETS
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError
from fer_edge.labels import EMOTIONS

NEW_NAME = "fer2013new.csv"
NEW_COLUMNS = ("Usage", "Image name", *VOTE_COLUMNS)
FOLDER_OF = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


def read_votes(path: Path) -> tuple[list[int], list[str], list[str], np.ndarray]:
    """Row positions, image names, splits and (N, 10) votes of the named rows of fer2013new.csv."""
    rows, names, splits, votes = [], [], [], []
    for i, (line, row) in enumerate(csv_rows(path, NEW_COLUMNS)):
        name = row["Image name"].strip()
        if not name:
            continue
        where = f"{path}:{line}"
        try:
            v = [int(row[c]) for c in VOTE_COLUMNS]
        except ValueError:
            raise DataError(f"{where}: votes must be integers, got {[row[c] for c in VOTE_COLUMNS]}") from None
        if min(v) < 0 or sum(v) > 100:
            raise DataError(f"{where}: votes out of range: {v}")
        rows.append(i)
        names.append(name)
        splits.append(split_of(row["Usage"], where))
        votes.append(v)
    return rows, names, splits, np.asarray(votes, dtype=np.int64).reshape(-1, len(VOTE_COLUMNS))


def find_pair(path: Path) -> tuple[Path, Path] | None:
    """(fer2013.csv, fer2013new.csv) for a folder holding both, or for the path of fer2013new.csv."""
    folder = path.parent if path.is_file() else path
    if path.is_file() and path.name.lower() != NEW_NAME:
        return None
    old, new = find_csv(folder, CSV_NAME, COLUMNS), folder / NEW_NAME
    return (old, new) if old is not None and new.is_file() else None


@DATASETS.register("ferplus_csv")
class FerPlusCsvLayout:
    version = 1
    priority = 10
    description = "FERPlus csv pair: fer2013.csv (pixels) + fer2013new.csv (Usage, Image name, 10 votes)"

    def detect(self, path: Path) -> bool:
        return find_pair(path) is not None

    def sources(self, path: Path) -> list[Path]:
        """The two csv files (what the cache fingerprints)."""
        return list(find_pair(path) or [path])

    def read(self, path: Path, strict: bool = False, progress: Progress | None = None) -> FaceDataset:
        pair = find_pair(path)
        if pair is None:
            raise DataError(f"{path}: needs both {CSV_NAME} and {NEW_NAME}")
        old, new = pair
        rows, names, splits, votes = read_votes(new)
        images, _, _ = read_fer2013_csv(old, progress)
        if rows and rows[-1] >= len(images):
            raise DataError(f"{new}: {rows[-1] + 1} rows but {old} has only {len(images)}; the files do not match")
        files = [f"{FOLDER_OF[s]}/{n}" for s, n in zip(splits, names, strict=True)]
        return build(self.name, path, [images[i] for i in rows], majority(votes), EMOTIONS,
                     soft=soft_labels(votes), split=splits, files=files)
