"""fer-edge devices list/show, doctor and deploy through the real CLI group."""

from __future__ import annotations

import json
import platform
import shutil
import stat
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner
from perf.tiny_bundle import session_bundle

from fer_edge.bundle import load_bundle, sha256_file
from fer_edge.cli import cli
from fer_edge.devices.doctor import recommend
from fer_edge.devices.profiles import PROFILES, parse
from fer_edge.errors import FerEdgeError

NAMES = ["jetson-nano", "jetson-orin-nano", "rpi4", "rpi5", "x86"]


@pytest.fixture(scope="module")
def tiny(request: pytest.FixtureRequest) -> Path:
    return session_bundle(request)


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


def test_deploy_rpi5_folder(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "rpi5", "--bundle", str(tiny), "--out", str(out))
    assert code == 0, text
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "bundle/manifest.json", "bundle/model_int8.tflite", "deploy.json",
                     "fer-edge.service", "install.sh", "requirements.txt", "run.sh", "wheels/.keep"]
    shipped = load_bundle(out / "bundle")
    (art,) = shipped.manifest.artifacts
    assert (art.format, art.precision) == ("tflite", "int8")
    shipped.verify(art)
    assert sha256_file(out / "bundle" / art.file) == sha256_file(tiny / art.file)
    assert shipped.manifest.classes == load_bundle(tiny).manifest.classes
    reqs = [ln for ln in (out / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert all("==" in r for r in reqs) and "ai-edge-litert==2.3.0" in reqs
    assert not any(r.startswith(("tensorflow", "onnxruntime", "openvino")) for r in reqs)
    run = (out / "run.sh").read_text()
    assert "--backend litert --precision int8 --threads 4" in run and '--bundle "$HERE/bundle"' in run
    for script in ("run.sh", "install.sh"):
        assert (out / script).stat().st_mode & stat.S_IXUSR
        assert subprocess.run(["bash", "-n", str(out / script)], check=False).returncode == 0
    unit = (out / "fer-edge.service").read_text()
    assert "ExecStart=/opt/fer-edge/run.sh" in unit and "User=pi" in unit and "WantedBy=multi-user.target" in unit
    record = json.loads((out / "deploy.json").read_text())
    assert record["device"] == "rpi5" and record["artifacts"][0]["sha256"] == art.sha256
    assert "tflite-runtime" in (out / "README.md").read_text()


def test_deploy_jetsons_ship_onnx_for_tensorrt(tiny: Path, tmp_path: Path) -> None:
    code, text = invoke("deploy", "--device", "jetson-nano", "--bundle", str(tiny), "--out", str(tmp_path / "n"))
    assert code == 0, text
    keys = {a.key for a in load_bundle(tmp_path / "n" / "bundle").manifest.artifacts}
    assert keys == {"tflite:int8", "onnx:fp32"}
    docker = (tmp_path / "n" / "Dockerfile").read_text()
    assert docker.startswith("# fer-edge") and "FROM python:3.11" in docker
    assert "docker run" in (tmp_path / "n" / "run.sh").read_text()
    code, text = invoke("deploy", "--device", "jetson-orin-nano", "--bundle", str(tiny), "--out",
                        str(tmp_path / "o"), "--threads", "3", "--user", "ubuntu")
    assert code == 0, text
    assert not (tmp_path / "o" / "Dockerfile").exists()
    assert "--threads 3" in (tmp_path / "o" / "run.sh").read_text()
    assert "User=ubuntu" in (tmp_path / "o" / "fer-edge.service").read_text()
    assert "numpy==2.2.6" in (tmp_path / "o" / "requirements.txt").read_text()  # JetPack 6 has Python 3.10


def test_deploy_refuses_what_it_should(tiny: Path, tmp_path: Path) -> None:
    other = tmp_path / "not-a-deploy"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(other), "--force")
    assert code != 0 and "not an earlier" in text and (other / "keep.txt").read_text() == "mine"
    out = tmp_path / "dist"
    assert invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(out))[0] == 0
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(out))
    assert code != 0 and "--force" in text
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(out), "--force",
                        "--precision", "fp32")
    assert code == 0, text
    assert [a.precision for a in load_bundle(out / "bundle").manifest.artifacts] == ["fp32"]
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(tmp_path / "x"),
                        "--precision", "fp16")
    assert code != 0 and "no usable tflite:fp16" in text and "tflite:int8" in text


def test_deploy_never_ships_a_corrupt_artifact(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(tiny, bad)
    f = bad / "model_int8.tflite"
    f.write_bytes(f.read_bytes()[:-8] + b"\x00" * 8)
    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "rpi5", "--bundle", str(bad), "--out", str(out))
    assert code != 0 and "sha256" in text and not out.exists()
