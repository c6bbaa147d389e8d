"""Device profiles as data: one JSON file per device in this folder, one entry each in ``PROFILES``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.registry import Registry

HERE = Path(__file__).parent


@dataclass(frozen=True)
class DeviceProfile:
    """What a device is and how fer-edge should run on it."""

    name: str
    title: str
    machine: str                         # platform.machine() on the device
    cpu: str
    cores: int
    memory: str
    os: str
    python: str                          # the Python the pinned requirements are for
    glibc: str                           # the device's glibc ("2.36"): wheels up to manylinux_2_36; "" = this host
    backend: str                         # fer_edge.runtime.backends name
    format: str                          # artifact format the backend runs
    precision: str                       # manifest precision to ship
    threads: int
    requirements: tuple[str, ...]        # pinned, name==version
    install: tuple[str, ...]             # shell lines for that OS
    pitfalls: tuple[str, ...]
    match: tuple[str, ...] = ()          # device-tree model substrings that identify the board
    cpu_features: tuple[str, ...] = ()
    extra_artifacts: tuple[str, ...] = ()  # "format:precision" shipped beside the main one (e.g. ONNX for TensorRT)
    user: str = "pi"                     # systemd User=
    container: dict[str, str] | None = None  # {"base": image, "platform": ...} when it must run in a container
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TUPLES = ("requirements", "install", "pitfalls", "match", "cpu_features", "extra_artifacts")


def parse(d: dict[str, Any], where: str) -> DeviceProfile:
    """A profile from its JSON dict; unknown or missing keys are an error naming the file."""
    from fer_edge.bundle import PRECISIONS
    from fer_edge.runtime.backends import BACKENDS

    known = set(DeviceProfile.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise FerEdgeError(f"{where}: unknown profile keys {sorted(unknown)}")
    try:
        prof = DeviceProfile(**{k: tuple(v) if k in _TUPLES else v for k, v in d.items()})
    except TypeError as exc:
        raise FerEdgeError(f"{where}: {exc}") from None
    backend = BACKENDS.get(prof.backend)
    if prof.format not in backend.formats:
        raise FerEdgeError(f"{where}: backend {prof.backend} does not run format {prof.format}")
    if prof.precision not in PRECISIONS:
        raise FerEdgeError(f"{where}: unknown precision {prof.precision}")
    bad = [r for r in prof.requirements if "==" not in r]
    if bad:
        raise FerEdgeError(f"{where}: requirements must be pinned (name==version): {bad}")
    return prof


def _load() -> Registry[DeviceProfile]:
    reg: Registry[DeviceProfile] = Registry("device profile")
    for path in sorted(HERE.glob("*.json")):
        prof = parse(json.loads(path.read_text()), str(path))
        if prof.name != path.stem:
            raise FerEdgeError(f"{path}: name {prof.name!r} differs from the file name")
        reg.add(prof.name, prof)
    return reg


PROFILES: Registry[DeviceProfile] = _load()
