"""The error of an output that cannot be written, shared by the sinks (``outputs``, ``video_out``)."""

from __future__ import annotations

import os

from fer_edge.errors import FerEdgeError


class OutputError(FerEdgeError):
    """An output that cannot be written (disk full, I/O error, read-only file system); the others are kept."""

    exit_code = 1


class StdoutClosed(OutputError):
    """``--json -`` whose reader went away (``| head -1``): a stop like any Unix tool's, not a failure."""


def output_error(label: str, exc: BaseException) -> OutputError:
    """One line naming the output and why it failed (``--json out.jsonl: No space left on device``)."""
    if isinstance(exc, OutputError):
        return exc
    if isinstance(exc, FileExistsError) and exc.filename and not os.path.isdir(exc.filename):
        return OutputError(f"{label}: {exc.filename} is not a folder")  # making its parent folder found a file
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return OutputError(f"{label}: {why}")
