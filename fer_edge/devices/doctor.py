"""`fer-edge doctor`: what this machine is, which backends import (with versions), whether a camera answers,
the CPU features that matter for inference, and the device profile to use."""

from __future__ import annotations

import glob
import importlib
import json
import subprocess
import sys
from typing import Any

from fer_edge.benchmarks import sysinfo
from fer_edge.devices.profiles import PROFILES

_CAMERA_PROBE = """
import json, cv2
cap = cv2.VideoCapture(int({index}))
ok = cap.isOpened()
frame = cap.read()[1] if ok else None
cap.release()
print(json.dumps({{"opened": bool(ok), "frame": None if frame is None else list(frame.shape)}}))
"""


def backends() -> list[dict[str, Any]]:
    """Each registered backend: whether its library imports here, its version, or the error and install hint."""
    from fer_edge.runtime.backends import BACKENDS

    out = []
    for name, cls in BACKENDS.items():
        entry: dict[str, Any] = {"name": name, "formats": list(cls.formats), "package": cls.package}
        if not cls.is_available():
            entry.update(ok=False, error="not installed", hint=f"pip install {cls.package}")
        else:
            errors = []
            for module in cls.modules:
                try:
                    importlib.import_module(module)
                    entry.update(ok=True, module=module, version=cls.version())
                    break
                except Exception as exc:  # an installed but broken library (wrong wheel, missing .so)
                    errors.append(f"{module}: {type(exc).__name__}: {str(exc)[:120]}")
            else:
                entry.update(ok=False, error="; ".join(errors), hint=f"pip install --force-reinstall {cls.package}")
        out.append(entry)
    return out


def camera(index: int = 0, timeout_s: float = 5.0, probe: bool = True) -> dict[str, Any]:
    """/dev/video* nodes, and whether OpenCV opens camera ``index`` and reads a frame (in a subprocess, with a
    timeout, since some drivers hang)."""
    out: dict[str, Any] = {"devices": sorted(glob.glob("/dev/video*")), "index": index}
    if not probe:
        out.update(opened=None, detail="not probed (--no-camera)")
        return out
    try:
        proc = subprocess.run([sys.executable, "-c", _CAMERA_PROBE.format(index=int(index))], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        out.update(opened=False, detail=f"no answer from camera {index} within {timeout_s:.0f} s")
        return out
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        out.update(opened=False, detail=f"probe failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:160]}")
        return out
    frame = res.get("frame")
    detail = (f"camera {index} gives {frame[1]}x{frame[0]} frames" if frame else
              f"camera {index} opens but gives no frame" if res["opened"] else f"camera {index} does not open")
    out.update(opened=bool(res["opened"] and frame), detail=detail)
    return out


def recommend(board: str, machine: str) -> tuple[str | None, str]:
    """(profile name, why) for a device-tree board name and platform.machine()."""
    board_l = board.lower()
    # The longest matching board name wins ("Jetson Orin Nano" over a shorter pattern).
    hits = sorted(((m, name) for name, p in PROFILES.items() for m in p.match if m.lower() in board_l),
                  key=lambda h: -len(h[0]))
    if hits:
        return hits[0][1], f"board {board!r} matches {hits[0][0]!r}"
    m = machine.lower()
    if m in ("x86_64", "amd64"):
        return "x86", f"{machine} CPU"
    if m in ("aarch64", "arm64"):
        return None, (f"an unlisted {machine} board ({board or 'no device-tree model'}): the closest profiles are "
                      "rpi5 (Armv8.2 with dot product) and rpi4 (Armv8.0)")
    return None, f"no profile for {machine or 'this machine'}"


def diagnose(camera_index: int = 0, camera_timeout_s: float = 5.0, probe_camera: bool = True) -> dict[str, Any]:
    """Everything `fer-edge doctor` reports, as a dict."""
    dev = sysinfo.describe()
    name, why = recommend(dev["board"], dev["arch"])
    warnings = []
    bk = backends()
    if not any(b.get("ok") for b in bk):
        warnings.append("no inference backend imports: pip install ai-edge-litert")
    if "tensorflow" in sys.modules:
        warnings.append("TensorFlow is imported in this process; the runtime does not need it")
    prof = PROFILES.get(name) if name else None
    if prof and not any(b["name"] == prof.backend and b.get("ok") for b in bk):
        warnings.append(f"the {prof.name} profile runs {prof.backend}, which does not import here: "
                        f"pip install {next(b['package'] for b in bk if b['name'] == prof.backend)}")
    return {
        "machine": {k: dev[k] for k in ("name", "board", "cpu", "arch", "cores", "usable_cores", "memory_mb", "os",
                                         "python", "fer_edge", "numpy", "opencv")},
        "cpu_features": dev["cpu_features"],
        "backends": bk,
        "camera": camera(camera_index, camera_timeout_s, probe_camera),
        "profile": {"name": name, "why": why,
                    **({"backend": prof.backend, "format": prof.format, "precision": prof.precision,
                        "threads": min(prof.threads, dev["usable_cores"])} if prof else {})},
        "warnings": warnings,
    }


def render(report: dict[str, Any]) -> str:
    """The doctor report as text."""
    m = report["machine"]
    lines = [f"machine:  {m['board'] or m['name']} - {m['cpu']}, {m['arch']}, {m['usable_cores']}/{m['cores']} cores, "
             f"{m['memory_mb']} MB", f"os:       {m['os']}",
             f"python:   {m['python']}  fer-edge {m['fer_edge']}  numpy {m['numpy']}  opencv {m['opencv']}",
             f"cpu:      {', '.join(report['cpu_features']) or 'no listed SIMD features'}", "backends:"]
    for b in report["backends"]:
        state = f"ok {b['version']}" if b.get("ok") else f"missing ({b['error']}; {b['hint']})"
        lines.append(f"  {b['name']:<12} {'/'.join(b['formats']):<14} {state}")
    cam = report["camera"]
    lines.append(f"camera:   {', '.join(cam['devices']) or 'no /dev/video*'}; {cam['detail']}")
    p = report["profile"]
    if p["name"]:
        lines.append(f"profile:  {p['name']} ({p['why']}): {p['backend']} {p['format']}/{p['precision']}, "
                     f"{p['threads']} threads; see `fer-edge devices show {p['name']}`")
    else:
        lines.append(f"profile:  none ({p['why']})")
    lines += [f"warning:  {w}" for w in report["warnings"]]
    return "\n".join(lines)
