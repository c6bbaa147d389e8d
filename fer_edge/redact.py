"""What may go into a shared file or onto the console: no credentials, no absolute paths of this machine.

``redact(text)`` hides the credentials of every URL inside ``text`` (``rtsp://user:pass@cam/s`` ->
``rtsp://***@cam/s``, ``?token=abc`` -> ``?token=***``); every recorded or printed source goes through it.
``redact_all(obj)`` applies it to every string of a JSON-like object. ``portable(obj)`` replaces absolute paths
with their base names, for provenance that is copied to other machines.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

HIDDEN = "***"
# scheme://userinfo@ : everything up to the last '@' of the URL (a password holding '@' or '/' is hidden whole)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)\S*@")
# query or fragment parameters that carry secrets
_SECRET_PARAM = re.compile(
    r"(?i)([?&;#](?:password|passwd|pass|pwd|user|username|token|access_token|auth|authorization|key|apikey|"
    r"api_key|secret|signature|sig|credential|credentials|session|sessionid)=)[^&;#\s]*")


def redact(text: str) -> str:
    """``text`` with the user name, password and secret query values of every URL in it replaced by ``***``."""
    text = str(text)
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_PARAM.sub(rf"\g<1>{HIDDEN}", _USERINFO.sub(rf"\g<1>{HIDDEN}@", text))


def redact_all(obj: Any) -> Any:
    """A copy of a JSON-like object (dicts, lists, strings, numbers) with ``redact`` applied to every string."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_all(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_all(v) for v in obj]
    return obj


def is_absolute(text: str) -> bool:
    """True for an absolute POSIX or Windows path (``/home/x``, ``C:\\x``, ``\\\\server\\share``)."""
    return PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute()


def portable(obj: Any) -> Any:
    """A copy of a JSON-like object where every string that is an absolute path is its base name instead
    (``/work/shared/data/ferplus`` -> ``ferplus``); relative paths and other values are kept."""
    if isinstance(obj, str):
        if "\n" in obj or not is_absolute(obj):
            return obj
        name = PureWindowsPath(obj).name if "\\" in obj else PurePosixPath(obj).name
        return name or obj[:1]
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable(v) for v in obj]
    return obj
