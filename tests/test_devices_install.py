"""The offline install of a deployment: the pins exist on the index for each device's platform and Python, every
base dependency of fer-edge is pinned, and on x86 a folder made with --wheels installs twice into a venv with the
network cut off (`unshare -n` where allowed) and then runs the sample clip."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fer_edge.devices.deploy import requirements
from fer_edge.devices.profiles import PROFILES
from fer_edge.devices.wheels import pip_platform_args
from fer_edge.devices.wheels import target as wheel_target

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
DEFAULT = REPO / "fer_edge" / "assets" / "default_bundle"


def pins(name: str) -> dict[str, str]:
    return {canonicalize_name(r.split("==")[0]): r.split("==")[1] for r in PROFILES.get(name).requirements}


@pytest.mark.parametrize("name", PROFILES.names())
def test_every_base_dependency_is_pinned(name: str) -> None:
    """A base dependency missing from a profile's pins would make the offline install fail on the device."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    have = pins(name)
    for dep in map(Requirement, deps):
        key = canonicalize_name(dep.name)
        assert key in have, f"{name}: {dep.name} is a base dependency but not pinned in the profile"
        assert dep.specifier.contains(have[key]), f"{name}: {dep.name}=={have[key]} does not satisfy {dep}"


def test_platform_tags_go_up_to_the_device_glibc() -> None:
    args = pip_platform_args("aarch64", "2.36", "3.11")
    tags = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert tags[0] == "manylinux2014_aarch64" and tags[1] == "manylinux_2_17_aarch64"
    assert tags[-1] == "manylinux_2_36_aarch64" and len(tags) == 1 + 36 - 17 + 1
    assert {"manylinux_2_27_aarch64", "manylinux_2_28_aarch64"} <= set(tags)  # ai-edge-litert's, numpy's
    assert args[args.index("--python-version") + 1] == "3.11" and args[args.index("--abi") + 1] == "cp311"
    orin = wheel_target(PROFILES.get("jetson-orin-nano"))
    assert "manylinux_2_35_aarch64" in orin["pip_args"] and "manylinux_2_36_aarch64" not in orin["pip_args"]
    assert orin["pip_args"][orin["pip_args"].index("--abi") + 1] == "cp310"
    assert wheel_target(PROFILES.get("x86"))["pip_args"] == []  # the host's own platform and Python


@pytest.mark.parametrize("name", ["rpi5", "jetson-orin-nano", "jetson-nano"])
def test_pins_resolve_to_wheels_for_the_device(name: str, tmp_path: Path) -> None:
    """What `deploy --wheels` downloads, resolved by pip for the device (metadata only; needs the index)."""
    prof = PROFILES.get(name)
    req = tmp_path / "requirements.txt"
    req.write_text(requirements(prof))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--retries", "1", "--timeout", "30",
                           "--target", str(tmp_path / "t"), "--only-binary=:all:", *wheel_target(prof)["pip_args"],
                           "-r", str(req), "--report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PIP_CACHE_DIR": str(tmp_path / "cache")})
    if proc.returncode != 0 and any(s in proc.stderr.lower() for s in ("connection", "network is unreachable",
                                                                       "name resolution", "could not fetch url")):
        pytest.skip("the package index cannot be reached")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    got = {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}
    for key, version in pins(name).items():
        assert got[key]["metadata"]["version"] == version
        wheel = got[key]["download_info"]["url"].rsplit("/", 1)[1]
        assert wheel.endswith(("-any.whl", "_aarch64.whl")), wheel
    assert f"cp{prof.python.replace('.', '')}" in got["numpy"]["download_info"]["url"]


@pytest.fixture(scope="module")
def x86_wheelhouse() -> Path:
    """This host's wheels for the x86 pins: $FER_EDGE_WHEELHOUSE, else downloaded once into .cache/ in the repo."""
    if os.environ.get("FER_EDGE_WHEELHOUSE"):
        return Path(os.environ["FER_EDGE_WHEELHOUSE"])
    text = requirements(PROFILES.get("x86"))
    key = hashlib.sha256(f"{text}{sys.version_info[:2]}".encode()).hexdigest()[:12]
    dest = REPO / ".cache" / f"wheels-x86-{key}"
    if not (dest / "DONE").exists():
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "requirements.txt").write_text(text)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-q", "--dest",
                               str(dest), "-r", str(dest / "requirements.txt")], capture_output=True, text=True,
                              timeout=900, check=False, env={**os.environ, "PIP_CACHE_DIR": str(dest / ".pip")})
        if proc.returncode != 0:
            pytest.skip(f"could not fetch the x86 wheels once (no index?): {proc.stderr.strip()[-300:]}")
        shutil.rmtree(dest / ".pip", ignore_errors=True)
        (dest / "DONE").write_text("")
    return dest


def offline() -> list[str]:
    """A command prefix that cuts the network (`unshare -n`: root, or user namespaces), or nothing."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True,
                                                  check=False).returncode == 0:
        return ["unshare", "-n"]
    return []


@pytest.mark.slow
def test_offline_install_is_idempotent_and_runs(x86_wheelhouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "fer_edge.cli", "deploy", "--device", "x86", "--bundle",
                           str(DEFAULT), "--out", str(out), "--wheels", "--find-links", str(x86_wheelhouse),
                           "--no-index"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    assert (out / "wheels" / "COMPLETE").is_file() and "fer_edge-0.1.0-py3-none-any.whl" in wheels
    for pkg in ("numpy-2.4.6", "opencv_python_headless-5.0.0.93", "ai_edge_litert-2.3.0", "jsonschema-4.26.0"):
        assert any(w.startswith(pkg) for w in wheels), pkg
    venv = tmp_path / "venv"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FER_EDGE_", "PIP_", "VIRTUAL_ENV"))},
           "FER_EDGE_VENV": str(venv), "PYTHON": sys.executable, "PIP_CACHE_DIR": str(tmp_path / "pip-cache")}
    cut = offline()
    for attempt in (1, 2):
        res = subprocess.run([*cut, "bash", str(out / "install.sh")], env=env, capture_output=True, text=True,
                             timeout=900, check=False)
        assert res.returncode == 0, f"install #{attempt}: {res.stderr[-3000:]}"
        assert "backends:" in res.stdout  # fer-edge doctor, from the venv, at the end
    # the second run changed nothing (fer-edge is given by its wheel file: pip compares the installed version)
    assert "fer-edge is already installed with the same version" in res.stdout, res.stdout[-2000:]
    assert "Successfully installed" not in res.stdout
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, check=True).stdout
    installed = {canonicalize_name(d["name"]): d["version"] for d in json.loads(freeze)}
    assert installed["fer-edge"] == "0.1.0" and "tensorflow" not in installed and "keras" not in installed
    for key, version in pins("x86").items():
        assert installed[key] == version
    run = subprocess.run([*cut, "bash", str(out / "run.sh"), "--max-frames", "3", "--json", "-"],
                         env={**env, "FER_EDGE_SOURCE": str(SAMPLE)}, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert len([ln for ln in run.stdout.splitlines() if '"faces"' in ln]) == 3


def test_install_without_wheels_stops_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "fer_edge.cli", "deploy", "--device", "x86", "--bundle", str(DEFAULT),
                    "--out", str(out)], capture_output=True, check=True, timeout=600)
    res = subprocess.run(["bash", str(out / "install.sh")], env={**os.environ, "FER_EDGE_VENV": str(tmp_path / "v")},
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2 and not (tmp_path / "v").exists()
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: wheels/ has no requirement wheels") and "--wheels" in line


def stub_wheel(folder: Path, name: str, version: str, marker: str = "") -> Path:
    """A minimal wheel (metadata only, plus a marker module) that pip can resolve and read."""
    import base64
    import zipfile

    dist = f"{name.replace('-', '_')}-{version}"
    files = {f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                         "Tag: py3-none-any\n",
             f"decoy_{name.replace('-', '_')}.py": f"MARKER = {marker!r}\n"}
    record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(t.encode())}" for p, t in files.items()]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, t in files.items():
            zf.writestr(p, t)
    return path


def test_install_takes_fer_edge_from_wheels_never_from_an_index(tmp_path: Path) -> None:
    """With FER_EDGE_INDEX=1 the index may hold a fer-edge of the same version (dependency confusion): install.sh
    must still install the wheel in wheels/. The generated install.sh runs against a local file index holding a
    decoy fer_edge and stand-ins for every pin; its venv's pip resolves for real (--dry-run --report)."""
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "fer_edge.cli", "deploy", "--device", "x86", "--bundle", str(DEFAULT),
                    "--out", str(out)], capture_output=True, check=True, timeout=600)
    index = tmp_path / "index"
    pinned = [("fer-edge", "0.1.0")] + [tuple(r.split("==")) for r in PROFILES.get("x86").requirements]
    for name, version in pinned:
        project = index / canonicalize_name(name)
        project.mkdir(parents=True)
        wheel = stub_wheel(project, name, version, marker="decoy")
        (project / "index.html").write_text(f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>')
    report = tmp_path / "report.json"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # the venv's python: real pip, resolving only (no install, no dependencies: the stand-ins have none)
    (venv / "bin" / "python").write_text(
        f'#!/bin/bash\nif [ "$1 $2 $3" = "-m pip install" ]; then shift 3; exec {sys.executable} -m pip install '
        f'--dry-run --ignore-installed --no-deps --report {report} "$@"; fi\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "fer-edge").write_text("#!/bin/sh\nexit 0\n")
    for exe in ("python", "fer-edge"):
        (venv / "bin" / exe).chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FER_EDGE_", "PIP_", "VIRTUAL_ENV"))},
           "FER_EDGE_VENV": str(venv), "FER_EDGE_INDEX": "1", "PIP_INDEX_URL": index.as_uri(),
           "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([*offline(), "bash", str(out / "install.sh")], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    got = {canonicalize_name(i["metadata"]["name"]): i["download_info"]["url"]
           for i in json.loads(report.read_text())["install"]}
    assert got["fer-edge"] == (out / "wheels" / "fer_edge-0.1.0-py3-none-any.whl").as_uri()
    assert got["numpy"].startswith(index.as_uri())  # the index was used for what wheels/ lacks
