"""The user's real home and fer-edge cache, captured when the test session starts (before conftest points HOME
and FER_EDGE_CACHE at temporary folders), and a snapshot to prove that no test wrote into that cache."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

REAL_HOME = Path(os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir)
REAL_CACHE = Path(os.environ.get("FER_EDGE_CACHE") or REAL_HOME / ".cache" / "fer-edge")

Snapshot = dict[str, tuple[int, int]]


def snapshot(folder: Path = REAL_CACHE) -> Snapshot:
    """{relative path: (size, mtime_ns)} of every file below ``folder`` (empty when it does not exist)."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs between two snapshots: 'new NAME', 'changed NAME', 'removed NAME'."""
    out = [f"new {k}" for k in after.keys() - before.keys()]
    out += [f"changed {k}" for k in before.keys() & after.keys() if before[k] != after[k]]
    out += [f"removed {k}" for k in before.keys() - after.keys()]
    return sorted(out)


def is_below(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())
