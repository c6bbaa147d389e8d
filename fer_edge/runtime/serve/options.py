"""Settings of ``fer-edge serve``: the cameras, the bind address and its token, what may leave the device."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.redact import redact  # the project's one credential redaction, used by every serve module

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its id (``cam0``... or the NAME of ``NAME=SPEC``), what to open and as which kind."""

    id: str
    spec: str
    kind: str | None = None  # "camera" for --camera N, else guessed from the spec

    @property
    def shown(self) -> str:
        return redact(self.spec)


def parse_cameras(cameras: tuple[int, ...] | list[int], sources: tuple[str, ...] | list[str]) -> list[CameraSpec]:
    """``--camera N`` and ``--source [NAME=]SPEC`` (repeatable) into camera specs with unique ids."""
    out: list[CameraSpec] = []
    for i, index in enumerate(cameras):
        out.append(CameraSpec(f"cam{i}", str(index), "camera"))
    for spec in sources:
        name, sep, rest = str(spec).partition("=")
        if sep and _NAME.match(name) and rest and not Path(spec).exists():
            out.append(CameraSpec(name, rest))
        else:
            out.append(CameraSpec(f"cam{len(out)}", str(spec)))
    if not out:
        raise FerEdgeError("give at least one --camera N or --source FILE|DIR|URL")
    ids = [c.id for c in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise FerEdgeError(f"camera name {dup[0]} is used twice: give each --source NAME=SPEC its own name")
    return out


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_address(host: str) -> str:
    """The address to bind: a bracketed IPv6 address (``[::1]``, as in URLs) without its brackets; unbalanced
    brackets, or brackets around something else, are refused."""
    if not (host.startswith("[") or host.endswith("]")):
        return host
    inner = host[1:-1] if len(host) > 2 and host.startswith("[") and host.endswith("]") else ""
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise FerEdgeError(f"--host {host!r}: brackets hold an IPv6 address, e.g. [::1] (or give it bare: ::1)"
                           ) from None
    return inner


def url_host(host: str) -> str:
    """``host`` as written in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def new_token() -> str:
    """A random token for ``--token auto`` and `fer-edge deploy --serve` (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def check_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token to require and whether it was generated. Any non-loopback bind needs one: ``--token T``, or
    ``--token auto`` to generate one (printed once). A token with spaces around it could never be sent (the
    Authorization header is stripped), so it is refused."""
    if token is not None and token.strip() == "":
        raise FerEdgeError("--token is empty")
    if token == "auto":
        return new_token(), True
    if token is not None and token != token.strip():
        raise FerEdgeError("--token starts or ends with whitespace, which an Authorization header cannot carry: "
                           "remove it")
    if token is not None and len(token) < 8:
        raise FerEdgeError("--token must be at least 8 characters (or --token auto to generate one)")
    if token is None and not is_loopback(host):
        raise FerEdgeError(f"binding {host} exposes the server beyond this device: add --token T "
                           "(or --token auto to generate one), or bind 127.0.0.1")
    return token, False


@dataclass
class ServeOptions:
    """Everything the server needs besides the pipelines."""

    cameras: list[CameraSpec]
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    stream: bool = False
    redact: bool = False
    stream_fps: float = 10.0
    jpeg_quality: int = 80
    stale_s: float = 10.0        # /healthz: a camera without a frame for this long is down
    pace: bool = True            # files and folders play at their frame rate, like a camera
    loop: bool = True            # a file that ends starts again
    retry_max_s: float = 30.0    # a failing camera is retried with doubling waits up to this
    timeline_s: float = 600.0    # label changes kept for the dashboard's timeline
    latest: bool = True
    overlap: bool = True
    source_options: dict[str, Any] = field(default_factory=dict)
    mqtt: str | None = None
    mqtt_options: dict[str, Any] = field(default_factory=dict)
