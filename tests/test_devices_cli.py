"""fer-edge devices list/show, doctor and deploy through the real CLI group."""

from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.cli import cli
from fer_edge.devices.doctor import recommend
from fer_edge.devices.profiles import PROFILES, parse
from fer_edge.errors import FerEdgeError

NAMES = ["jetson-nano", "jetson-orin-nano", "rpi4", "rpi5", "x86"]


def invoke(*args: str) -> tuple[int, str]:
    """(exit code, output) as `fer-edge` gives them: a FerEdgeError becomes 'error: ...' and its exit code."""
    res = CliRunner().invoke(cli, list(args))
    if isinstance(res.exception, FerEdgeError):
        return res.exception.exit_code, res.output + f"error: {res.exception}"
    return res.exit_code, res.output


def test_list_shows_every_profile() -> None:
    code, out = invoke("devices", "list")
    assert code == 0
    lines = out.splitlines()
    assert sorted(line.split()[0] for line in lines[1:]) == NAMES
    assert all("litert tflite/int8" in line for line in lines[1:])


def test_show_profile_and_its_pitfalls() -> None:
    code, out = invoke("devices", "show", "rpi5")
    assert code == 0
    assert "Cortex-A76" in out and "ai-edge-litert==2.3.0" in out and "tflite-runtime" in out
    code, out = invoke("devices", "show", "jetson-orin-nano", "--json")
    assert code == 0 and parse(json.loads(out), "shown") == PROFILES.get("jetson-orin-nano")
    code, out = invoke("devices", "show", "rpi3")
    assert code == 2 and "rpi4" in out


def test_profiles_carry_the_known_pitfalls() -> None:
    text = {n: " ".join(PROFILES.get(n).pitfalls) for n in NAMES}
    for pi in ("rpi4", "rpi5"):
        assert "tflite-runtime is retired" in text[pi] and "Python 3.11" in text[pi]
    for jetson in ("jetson-nano", "jetson-orin-nano"):
        assert "no aarch64 onnxruntime-gpu wheel on PyPI" in text[jetson]
        assert "trtexec" in text[jetson] and "ONNX artifact" in text[jetson]
        assert PROFILES.get(jetson).extra_artifacts == ("onnx:fp32",)
    assert "Python 3.6" in text["jetson-nano"] and PROFILES.get("jetson-nano").container
    for n in NAMES:
        assert all("==" in r for r in PROFILES.get(n).requirements)


def test_profile_data_is_checked() -> None:
    good = PROFILES.get("rpi5").as_dict()
    with pytest.raises(FerEdgeError, match="unknown profile keys"):
        parse({**good, "gpu": True}, "x.json")
    with pytest.raises(FerEdgeError, match="pinned"):
        parse({**good, "requirements": ["numpy>=2"]}, "x.json")
    with pytest.raises(FerEdgeError, match="does not run format"):
        parse({**good, "format": "onnx"}, "x.json")


@pytest.mark.parametrize(("board", "machine", "want"), [
    ("Raspberry Pi 5 Model B Rev 1.0", "aarch64", "rpi5"),
    ("Raspberry Pi 4 Model B Rev 1.4", "aarch64", "rpi4"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "aarch64", "jetson-orin-nano"),
    ("NVIDIA Jetson Nano Developer Kit", "aarch64", "jetson-nano"),
    ("", "x86_64", "x86"),
    ("", "aarch64", None),
])
def test_recommended_profile(board: str, machine: str, want: str | None) -> None:
    assert recommend(board, machine)[0] == want


def test_doctor_reports_machine_backends_and_profile() -> None:
    code, out = invoke("doctor", "--json", "--no-camera")
    assert code == 0
    rep = json.loads(out)
    by_name = {b["name"]: b for b in rep["backends"]}
    assert by_name["litert"]["ok"] and by_name["litert"]["version"] == version("ai-edge-litert")
    assert by_name["onnxruntime"]["version"] == version("onnxruntime")
    assert rep["machine"]["arch"] == platform.machine() and rep["machine"]["cores"] >= 1
    assert rep["camera"]["opened"] is None and isinstance(rep["camera"]["devices"], list)
    if platform.machine() == "x86_64":
        assert rep["profile"]["name"] == "x86" and "avx2" in rep["cpu_features"]
    code, out = invoke("doctor", "--no-camera")
    assert code == 0 and "backends:" in out and "litert" in out and "profile:" in out


def test_doctor_camera_probe_times_out_or_answers() -> None:
    if Path("/dev/video0").exists():
        pytest.skip("a real camera is attached; this test checks the no-camera answer")
    code, out = invoke("doctor", "--json", "--camera-timeout", "20")
    assert code == 0
    cam = json.loads(out)["camera"]
    assert cam["opened"] is False and "camera 0" in cam["detail"]
