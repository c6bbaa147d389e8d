"""No network unless asked: `run` (ONNX Runtime and OpenVINO), `convert` (TFLite, ONNX, OpenVINO + NNCF int8),
`bench` and `doctor`, each with a fresh HOME, write no telemetry id and attempt no outbound connection.

Connections are caught twice: a sitecustomize audit hook (socket.connect / getaddrinfo / sendto in Python code, in
every subprocess too) and, where strace is installed, the connect/sendto system calls of the whole process tree
(native code such as onnxruntime's telemetry opens its own sockets). A control run with FER_EDGE_ALLOW_TELEMETRY=1
shows the same harness does see the libraries' telemetry."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
DEFAULT = REPO / "fer_edge" / "assets" / "default_bundle"
TELEMETRY_FILES = ("intel", ".cache/Microsoft")

SITECUSTOMIZE = '''import os, sys
_log = os.environ.get("NET_AUDIT_LOG")
def _hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname"):
        try:
            with open(_log, "a") as f:
                f.write(repr((event, args[1] if event in ("socket.connect", "socket.sendto") else args[0])) + "\\n")
        except Exception:
            pass
if _log:
    sys.addaudithook(_hook)
'''

LOCAL = re.compile(r"^(127\.|::1$|localhost$|0\.0\.0\.0$|::$|$)")
STRACE_NET = re.compile(r'(connect|sendto|sendmsg)\(\d+, .*?sa_family=AF_INET6?, sin6?_port=htons\((\d+)\), '
                        r'(?:sin_addr=inet_addr\("([^"]+)"\)|sin6_flowinfo=\S+ inet_pton\(AF_INET6, "([^"]+)")')


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audit")
    (d / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return d


CI_MARKERS = {"CI", "TF_BUILD", "JENKINS_URL"}


def outbound(harness: Path, tmp: Path, args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``fer-edge ARGS`` with a fresh HOME; what it tried on the network and wrote under HOME."""
    home = tmp / "home"
    home.mkdir()
    log, trace = tmp / "audit.log", tmp / "strace.log"
    # as a user runs it: CI markers go too (openvino_telemetry stays silent when CI=true, TF_BUILD or JENKINS_URL
    # is set, which would make both the quiet runs and the control below prove nothing on a CI machine)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "FER_EDGE_", "ORT_", "PYTHONPATH"))
            and k not in CI_MARKERS}
    full = {**base, "HOME": str(home), "PYTHONPATH": str(harness), "NET_AUDIT_LOG": str(log), **(env or {})}
    cmd = [sys.executable, "-m", "fer_edge.cli", *args]
    if shutil.which("strace"):
        cmd = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace), *cmd]
    res = subprocess.run(cmd, env=full, cwd=tmp, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    calls = [ast.literal_eval(ln) for ln in log.read_text().splitlines()] if log.exists() else []
    py = [c for c in calls if not _local(c[1])]
    native = []
    if trace.exists():
        for m in STRACE_NET.finditer(trace.read_text()):
            addr = m.group(3) or m.group(4)
            if not LOCAL.match(addr):
                native.append(f"{m.group(1)} {addr}:{m.group(2)}")
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    telemetry = [w for w in written if w.startswith(TELEMETRY_FILES)]
    return {"python": py, "native": native, "telemetry": telemetry, "written": written, "stdout": res.stdout}


def _local(addr: object) -> bool:
    if isinstance(addr, tuple) and addr:
        addr = addr[0]
    if isinstance(addr, bytes):
        addr = addr.decode(errors="replace")
    return not isinstance(addr, str) or addr.startswith("/") or addr.startswith("\0") or bool(LOCAL.match(addr))


def assert_quiet(found: dict[str, object]) -> None:
    assert found["telemetry"] == [], f"telemetry files under HOME: {found['telemetry']}"
    assert found["python"] == [], f"outbound attempts from Python: {found['python']}"
    assert found["native"] == [], f"outbound system calls: {found['native']}"


def synthetic_ferplus(root: Path, per_split: int = 48) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (root / folder).mkdir(parents=True)
        rows = []
        for i in range(per_split):
            votes = [0] * 10
            votes[i % 8] = 10
            cv2.imwrite(str(root / folder / f"fer{i:05d}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
            rows.append(f'fer{i:05d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
        (root / folder / "label.csv").write_text("\n".join(rows) + "\n")
    return root


def test_doctor(harness: Path, tmp_path: Path) -> None:
    found = outbound(harness, tmp_path, ["doctor", "--json", "--no-camera"])
    assert {b["name"] for b in json.loads(found["stdout"])["backends"]} >= {"onnxruntime", "openvino"}
    assert_quiet(found)


def test_the_harness_sees_telemetry_when_allowed(harness: Path, tmp_path: Path) -> None:
    found = outbound(harness, tmp_path, ["doctor", "--json", "--no-camera"], {"FER_EDGE_ALLOW_TELEMETRY": "1"})
    assert "intel/openvino_ga_cid" in found["telemetry"]
    assert ".cache/Microsoft/DeveloperTools/.onnxruntime/deviceid" in found["telemetry"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_run(harness: Path, tmp_path: Path, backend: str) -> None:
    found = outbound(harness, tmp_path, ["run", "--source", str(SAMPLE), "--backend", backend, "--max-frames", "3",
                                         "--json", str(tmp_path / "out.jsonl")])
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert_quiet(found)


def test_bench(harness: Path, tmp_path: Path) -> None:
    data = synthetic_ferplus(tmp_path / "ferplus")
    out = tmp_path / "bench"
    found = outbound(harness, tmp_path, ["bench", str(DEFAULT), "--data", str(data), "--threads", "1", "--warmup",
                                         "1", "--runs", "5", "--rounds", "1", "--min-time", "0.01", "--batch-sizes",
                                         "1", "--out", str(out), "--quiet"])
    rows = json.loads((out / "results.json").read_text())["runs"][0]["rows"]
    assert {r["backend"] for r in rows} >= {"onnxruntime", "openvino"}
    assert_quiet(found)


@pytest.mark.slow
def test_convert(harness: Path, tmp_path: Path) -> None:
    import keras

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(8, activation="softmax")(x))
    model.save(tmp_path / "model.keras")
    data = synthetic_ferplus(tmp_path / "ferplus")
    out = tmp_path / "bundle"
    found = outbound(harness, tmp_path, [
        "convert", str(tmp_path / "model.keras"), "--formats", "tflite,onnx,openvino", "--int8", "--calib",
        str(data), "--calib-size", "16", "--eval", str(data), "--eval-size", "16", "--classes",
        "neutral,happiness,surprise,sadness,anger,disgust,fear,contempt", "--out", str(out)])
    formats = {a["format"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert formats == {"tflite", "onnx", "openvino"}
    assert_quiet(found)
