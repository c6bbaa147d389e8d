"""Atomic writes: a temp file or folder next to the target, renamed into place, so nothing is left half-written.

Temp names carry the writer's pid (``.NAME.PID.XXXXXXXX.tmp...``): the next write of the same target sweeps what a
killed writer left (its pid gone, the file older than this process) and never what a live one is writing. A folder
replaces an existing one by an atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere the old folder is
moved aside first and, if the writer dies between the two renames, put back by the next ``atomic_dir`` call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STARTED = time.time()  # when this process loaded fer-edge: temps modified later are never taken as stale
LEGACY_AGE_S = 3600.0  # temps named without a pid (older fer-edge versions) are stale after an hour untouched
_RAND = r"[A-Za-z0-9_]{8}"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], sweep: bool = True) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; on success it replaces ``target`` in one rename.
    ``sweep``: first remove temps of ``target`` that killed writers left (see ``sweep_stale``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        sweep_stale(target.parent, target.name)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target.name), suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike[str], data: bytes, sweep: bool = True) -> Path:
    with atomic_path(target, sweep=sweep) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces ``target`` whole.

    The swap is one atomic exchange where the OS allows it, so ``target`` always exists (old or new); elsewhere
    the old folder is moved aside first and removed after the new one is in place, and a writer killed in between
    is repaired by the next call (``recover_dir``). Either way an interruption never leaves a mix.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target.name), suffix=".tmp-dir", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if not os.path.lexists(target):
            os.replace(tmp, target)
        elif exchange(tmp, target):  # target is the new folder now, tmp holds the old one
            _remove(tmp)
        else:
            old = target.with_name(f"{_prefix(target.name)}old")
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def recover_dir(target: str | os.PathLike[str]) -> Path | None:
    """Repair what a killed ``atomic_dir`` left beside ``target``: a folder moved aside (``.old``) is put back when
    ``target`` is missing, else removed; stale temp folders are removed. Returns the restored path, if any."""
    target = Path(target)
    olds = sorted(_stale(target.parent, target.name, kinds=("old",), young_too=True), key=_mtime, reverse=True)
    restored = None
    for old in olds:
        if not os.path.lexists(target):
            os.replace(old, target)
            restored = target
        else:
            _remove(old)
    sweep_stale(target.parent, target.name)
    return restored


def sweep_stale(parent: str | os.PathLike[str], name: str | None = None, name_regex: str | None = None) -> list[Path]:
    """Remove the temp files and folders that killed writers left in ``parent`` (of target ``name``, of targets
    matching ``name_regex``, or of any target): their pid is not running (or, for pid-less names, untouched for
    LEGACY_AGE_S) and they were last modified before this process started. Best effort; returns what went."""
    removed = []
    for path in _stale(Path(parent), name, kinds=("tmp", "old"), name_regex=name_regex):
        with contextlib.suppress(OSError):
            _remove(path)
            removed.append(path)
    return removed


def sweep_temp_root(prefix: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove ``{prefix}{pid}-*`` work folders of dead processes from the temp dir (e.g. ``fer-edge-convert-``)."""
    root = Path(root or tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-")
    removed = []
    with contextlib.suppress(OSError):
        for path in root.iterdir():
            m = pattern.match(path.name)
            if m and not pid_alive(int(m.group(1))) and _mtime(path) < STARTED:
                with contextlib.suppress(OSError):
                    _remove(path)
                    removed.append(path)
    return removed


def temp_dir_prefix(prefix: str) -> str:
    """The ``prefix`` of a work folder in the temp dir that ``sweep_temp_root`` can sweep once this process dies."""
    return f"{prefix}{os.getpid()}-"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (this one included; a pid we may not signal counts as running)."""
    if pid <= 0:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the OS or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


_RENAMEAT2: list[Callable[..., int] | None] = []


def _renameat2() -> Callable[..., int] | None:
    if not _RENAMEAT2:
        fn = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                fn = ctypes.CDLL(None, use_errno=True).renameat2
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
        _RENAMEAT2.append(fn)
    return _RENAMEAT2[0]


def _prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _stale(parent: Path, name: str | None, kinds: tuple[str, ...], young_too: bool = False,
           name_regex: str | None = None) -> Iterator[Path]:
    """Temps of dead writers: ``.NAME.PID.RAND.tmp*`` and ``.NAME.PID.old`` (this version); with a ``name``, also
    ``.NAME.RAND.tmp*`` and ``.NAME.old-PID`` (older versions). Only those modified before this process started,
    unless ``young_too``."""
    n = re.escape(name) if name is not None else f"(?:{name_regex})" if name_regex else r"[^/]+"
    patterns = [("tmp", re.compile(rf"^\.{n}\.(?P<pid>\d+)\.{_RAND}\.tmp")),
                ("old", re.compile(rf"^\.{n}\.(?P<pid>\d+)\.old$"))]
    if name is not None:
        patterns += [("old", re.compile(rf"^\.{n}\.old-(?P<pid>\d+)$")),
                     ("tmp", re.compile(rf"^\.{n}\.{_RAND}\.tmp"))]
    try:
        entries = [e.name for e in os.scandir(parent) if e.name.startswith(".")]
    except OSError:
        return
    for entry in entries:
        match = next(((kind, m) for kind, pat in patterns if (m := pat.match(entry))), None)
        if match is None or match[0] not in kinds:
            continue
        path = Path(parent) / entry
        mtime = _mtime(path)
        if mtime >= STARTED and not young_too:
            continue
        pid = match[1].groupdict().get("pid")
        if pid is not None:
            if not pid_alive(int(pid)):
                yield path
        elif time.time() - mtime > LEGACY_AGE_S:
            yield path


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return float("inf")


def _remove(path: str | os.PathLike[str]) -> None:
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif os.path.lexists(p):
        p.unlink()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _read_umask()  # at import, before threads start: setting it later would race their file creation


def _umask() -> int:
    """The process umask without setting it: Linux's /proc/self/status says it; elsewhere the one read at import."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def _jsonable(obj: Any) -> Any:
    """json.dumps fallback for numpy scalars/arrays and paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
