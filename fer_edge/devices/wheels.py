"""The wheels a deployment carries for an offline install: fer-edge's own (built here, no network) and, when asked,
the pinned requirements with their dependencies for the device's platform and Python (``pip download``)."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import fer_edge
from fer_edge.devices.profiles import DeviceProfile
from fer_edge.errors import FerEdgeError

WHEEL_GLOB = f"fer_edge-{fer_edge.__version__}-*.whl"
WHEEL_NAME = WHEEL_GLOB.replace("*", "py3-none-any")
SETUPTOOLS_MIN = 77  # pyproject.toml's build-system: a PEP 639 license string
_WHEEL_NAME = re.compile(r"fer_edge-[0-9A-Za-z.+]+-[0-9A-Za-z_.]+-[0-9A-Za-z_.]+-[0-9A-Za-z_.]+\.whl")


def target(prof: DeviceProfile) -> dict[str, Any]:
    """Where the wheels must run: the device's arch, Python and glibc, or (no glibc in the profile) this host."""
    if not prof.glibc:
        return {"platform": sysconfig.get_platform(), "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
                "host": True, "pip_args": []}
    return {"platform": f"linux-{prof.machine}, glibc {prof.glibc}", "python": prof.python, "host": False,
            "pip_args": pip_platform_args(prof.machine, prof.glibc, prof.python)}


def pip_platform_args(machine: str, glibc: str, python: str) -> list[str]:
    """``pip download`` flags for a CPython on Linux with this glibc: one --platform per manylinux tag it accepts
    (pip takes one tag per flag and expands none of them), from manylinux2014 (glibc 2.17) up to its own glibc."""
    major, minor = (int(v) for v in glibc.split(".")[:2])
    if (major, minor) < (2, 17):
        raise FerEdgeError(f"glibc {glibc} is older than manylinux2014 (2.17): no wheels on PyPI target it")
    tags = [f"manylinux2014_{machine}"] + [f"manylinux_2_{m}_{machine}" for m in range(17, minor + 1)]
    py = python.split(".")
    abi = f"cp{py[0]}{py[1]}"
    return [*(a for t in tags for a in ("--platform", t)), "--python-version", f"{py[0]}.{py[1]}",
            "--implementation", "cp", "--abi", abi]


def source_tree() -> Path | None:
    """The source checkout this fer-edge runs from (an editable install), or None for an installed wheel."""
    root = Path(fer_edge.__file__).resolve().parents[1]
    pp = root / "pyproject.toml"
    return root if pp.is_file() and 'name = "fer-edge"' in pp.read_text() else None


def fer_edge_wheel(dest: Path, find_links: tuple[Path, ...] = ()) -> Path:
    """Put this version's fer-edge wheel in ``dest``: one from ``find_links`` if there is, else built from the
    source checkout with the installed setuptools (no build isolation, so no network)."""
    for d in find_links:
        found = sorted(p for p in Path(d).glob(WHEEL_GLOB) if _WHEEL_NAME.fullmatch(p.name))
        if found:
            return Path(shutil.copy2(found[-1], dest))
    root = source_tree()
    if root is None:
        raise FerEdgeError(f"this fer-edge is an installed wheel, not a source checkout: make {WHEEL_NAME} with "
                           f"`pip wheel --no-deps /path/to/checkout -w DIR` and pass --find-links DIR")
    check_setuptools()
    with tempfile.TemporaryDirectory(prefix="fer-edge-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        shutil.copytree(root / "fer_edge", src / "fer_edge",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*.tmp*", "*.egg-info"))
        out = Path(tmp) / "out"
        _pip(["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(src)],
             "building the fer-edge wheel")
        built = sorted(out.glob(WHEEL_GLOB))
        if not built:
            raise FerEdgeError(f"building the fer-edge wheel gave no {WHEEL_GLOB} file")
        return Path(shutil.copy2(built[-1], dest))


def check_setuptools() -> None:
    """Building the wheel here uses the installed setuptools (no build isolation): say up front when it is too old."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        version = None
    major = re.match(r"\d+", version or "")
    if major is None or int(major.group()) < SETUPTOOLS_MIN:
        raise FerEdgeError(f"building the fer-edge wheel from this checkout needs setuptools>={SETUPTOOLS_MIN} "
                           f"({'installed: ' + version if version else 'not installed'}): "
                           f"pip install 'setuptools>={SETUPTOOLS_MIN}', or pass --find-links DIR with {WHEEL_NAME}")


def download(requirements: Path, dest: Path, prof: DeviceProfile, find_links: tuple[Path, ...] = (),
             no_index: bool = False) -> list[Path]:
    """``pip download`` the pinned requirements and their dependencies, binary wheels only, for the device."""
    args = ["download", "--only-binary=:all:", "--dest", str(dest), "-r", str(requirements),
            *target(prof)["pip_args"], *(a for d in find_links for a in ("--find-links", str(d)))]
    if no_index:
        args.append("--no-index")
    before = set(dest.glob("*.whl"))
    _pip(args, f"downloading the {prof.name} wheels" + (" from --find-links only (--no-index)" if no_index else ""))
    return sorted(set(dest.glob("*.whl")) - before)


def _pip(args: list[str], what: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FerEdgeError(f"{what} failed: {pip_error(proc.stderr + chr(10) + proc.stdout)}")


_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception): .+")
_PIP_ERROR = re.compile(r"(?:ERROR|error): (.+)")
_PIP_GENERIC = {"subprocess-exited-with-error", "See above for details."}


def pip_error(output: str) -> str:
    """The line of pip's output that says what went wrong: pip's own ``ERROR:``/``error:`` line (not its generic
    ones), with the last exception line of a failed build step in brackets; never the closing ``hint:`` line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    cause = next((ln for ln in reversed(lines) if _EXCEPTION.fullmatch(ln)), None)
    errors = [m.group(1).strip() for ln in lines if (m := _PIP_ERROR.fullmatch(ln))]
    error = next((e for e in errors if e not in _PIP_GENERIC), None)
    if error and cause and cause not in error:
        return f"{error} ({cause})"
    plain = [ln for ln in lines if not ln.startswith(("hint:", "note:"))]
    return error or cause or (plain or lines or ["pip gave no output"])[-1]
