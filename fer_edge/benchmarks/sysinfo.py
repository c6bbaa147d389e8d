"""What machine this is: CPU model and features, cores, memory, OS, board, Python and backend versions.

Reads /proc and /sys where they exist (Linux, Raspberry Pi OS, Jetson L4T); elsewhere falls back to ``platform``.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Flags worth knowing for inference speed, as /proc/cpuinfo spells them (x86 "flags", Arm "Features").
X86_FEATURES = {"avx": "avx", "avx2": "avx2", "fma": "fma", "avx512f": "avx512", "avx512_vnni": "avx512_vnni",
                "avx_vnni": "avx_vnni", "amx_int8": "amx_int8", "sse4_2": "sse4_2", "f16c": "f16c"}
ARM_FEATURES = {"asimd": "neon", "neon": "neon", "asimddp": "dotprod", "asimdhp": "fp16", "fphp": "fp16",
                "i8mm": "i8mm", "sve": "sve", "sve2": "sve2", "bf16": "bf16"}
BOARD_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpuinfo_fields(text: str | None = None) -> dict[str, str]:
    """First value of each key in /proc/cpuinfo (``text`` overrides the file, for tests)."""
    text = _read("/proc/cpuinfo") if text is None else text
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def cpu_model(text: str | None = None) -> str:
    """Human CPU name: x86 "model name", Arm "Model"/"Hardware", else the implementer/part, else platform."""
    f = cpuinfo_fields(text)
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if f.get(key):
            return f[key]
    if "CPU part" in f:
        return f"Arm CPU part {f['CPU part']} (implementer {f.get('CPU implementer', '?')})"
    return platform.processor() or platform.machine() or "unknown"


def cpu_features(text: str | None = None) -> list[str]:
    """Inference-relevant CPU features (avx2, avx512, neon, dotprod, fp16, i8mm, ...), sorted."""
    f = cpuinfo_fields(text)
    flags = set((f.get("flags", "") + " " + f.get("Features", "")).split())
    found = {name for flag, name in {**X86_FEATURES, **ARM_FEATURES}.items() if flag in flags}
    if platform.machine().lower() in ("aarch64", "arm64") and not f.get("Features") and text is None:
        found.add("neon")  # every AArch64 CPU has Advanced SIMD, even where cpuinfo does not list it
    return sorted(found)


def board_model() -> str:
    """Board name from the device tree ("Raspberry Pi 5 Model B Rev 1.0", "NVIDIA Jetson Orin Nano ..."), or ''."""
    for p in BOARD_FILES:
        text = _read(p).strip("\x00 \n")
        if text:
            return text
    if Path("/etc/nv_tegra_release").is_file():
        return "NVIDIA Jetson (L4T " + _read("/etc/nv_tegra_release").split(",")[0].strip("# \n") + ")"
    return ""


def os_name() -> str:
    """PRETTY_NAME from /etc/os-release plus the kernel, or platform's description."""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return f"{line.split('=', 1)[1].strip().strip(chr(34))} (kernel {platform.release()})"
    return platform.platform()


def memory_mb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def package_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def backend_versions() -> dict[str, str]:
    """Installed inference backends and their versions (registry names); absent ones are left out."""
    from fer_edge.runtime.backends import BACKENDS

    return {name: cls.version() for name, cls in BACKENDS.items() if cls.is_available()}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def emulation(text: str | None = None) -> str | None:
    """How this machine is emulated, or None: $FER_EDGE_EMULATION (set by `fer-edge devices emulate`), else an Arm
    Python seeing an x86 /proc/cpuinfo, which is what qemu-user shows (``text`` overrides the file, for tests)."""
    if os.environ.get("FER_EDGE_EMULATION"):
        return os.environ["FER_EDGE_EMULATION"]
    f = cpuinfo_fields(text)
    if platform.machine().lower() in ("aarch64", "arm64", "armv7l") and ("vendor_id" in f or "flags" in f):
        return f"qemu-user ({platform.machine()} on a {f.get('vendor_id', 'x86')} host CPU)"
    return None


def describe(name: str | None = None, executable: bool = False) -> dict[str, Any]:
    """The device section of a benchmark record. ``name`` defaults to the board or CPU model, never the host
    name (results are shared); the Python executable's path is recorded only with ``executable``."""
    import fer_edge

    board, cpu = board_model(), cpu_model()
    info = {
        "name": name or board or cpu or "unknown",
        "board": board,
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count() or 1,
        "usable_cores": usable_cores(),
        "memory_mb": memory_mb(),
        "cpu_features": cpu_features(),
        "os": os_name(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "fer_edge": fer_edge.__version__,
        "numpy": package_version("numpy"),
        "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
        "backends": backend_versions(),
        "load_average": load_average(),
        "emulated": emulation(),
    }
    if executable:
        info["executable"] = sys.executable
    return info
