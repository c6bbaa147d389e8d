"""Reading the text files of a dataset (label.csv, fer2013.csv, RAF-DB and CK+ label files) as UTF-8, with any
decoding or csv problem reported as one DataError naming the file (and the line where it can be told)."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from fer_edge.errors import DataError

ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark some editors write


def _bad_line(path: Path) -> str:
    """':LINE' of the first byte that is not UTF-8 (read again only when decoding failed), or ''."""
    try:
        raw = path.read_bytes()
        raw.decode(ENCODING)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return f":{line}"
    except OSError:
        return ""
    return ""


@contextlib.contextmanager
def open_text(path: str | Path) -> Iterator[TextIO]:
    """``path`` opened for reading as UTF-8 text (newline="" for csv); a file that is not UTF-8, is not a
    readable csv or cannot be read raises DataError naming it, whenever the problem shows while reading."""
    path = Path(path)
    try:
        with path.open(encoding=ENCODING, newline="") as fh:
            yield fh
    except UnicodeDecodeError:
        raise DataError(f"{path}{_bad_line(path)}: not UTF-8 text; save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable csv file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_text(path: str | Path) -> str:
    """The whole of a small text file, as ``open_text`` reads it (universal newlines)."""
    with open_text(path) as fh:
        return fh.read().replace("\r\n", "\n").replace("\r", "\n")
