"""Settings of ``fer-edge serve``: the cameras, the bind address and its token, what may leave the device."""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError

try:  # the project's one credential-redaction function, where this version has it
    from fer_edge.redact import redact as _redact_credentials
except ImportError:  # pragma: no cover - older tree
    from fer_edge.runtime.sources.stream import _redact_credentials

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def redact(text: str) -> str:
    """Credentials in any URL inside ``text`` replaced by ``***`` (pages, logs, metrics, MQTT never show them)."""
    return _redact_credentials(str(text))


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


def check_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token to require and whether it was generated. Any non-loopback bind needs one: ``--token T``, or
    ``--token auto`` to generate one (printed once)."""
    if token is not None and token.strip() == "":
        raise FerEdgeError("--token is empty")
    if token == "auto":
        return secrets.token_urlsafe(18), True
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
