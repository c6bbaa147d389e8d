"""`fer-edge devices emulate`: parity arithmetic, the chroot command, the emulation marker, deploy-folder checks
(fast, anywhere); and one real emulated Raspberry Pi run (slow: root, binfmt_misc, qemu-aarch64, a buildable or
cached Debian bookworm arm64 rootfs; skipped with the reason elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.benchmarks import sysinfo
from fer_edge.cli import cli
from fer_edge.devices import parity, rootfs
from fer_edge.devices.emulate import EmulateOptions, check_deploy, emulate
from fer_edge.devices.rootfs import EmulationError
from fer_edge.runtime.sample import read_faces

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = REPO / "fer_edge" / "assets" / "default_bundle"


def _face(box: list[int], label: str, conf: float = 0.9) -> dict:
    return {"box": box, "track": 1, "label": label, "confidence": conf, "probabilities": {label: conf, "other": 0.1}}


def _frame(i: int, *faces: dict) -> dict:
    return {"time": i / 6, "frame": i, "faces": list(faces)}


def test_compare_counts_frames_matches_and_labels() -> None:
    ref = [_frame(0, _face([0, 0, 100, 100], "happiness"), _face([200, 0, 100, 100], "neutral")),
           _frame(1, _face([0, 0, 100, 100], "sadness")), _frame(2)]
    emu = [_frame(0, _face([5, 5, 100, 100], "happiness", 0.8), _face([200, 0, 100, 100], "surprise")),
           _frame(1), _frame(2), _frame(3, _face([0, 0, 10, 10], "anger"))]
    p = parity.compare(ref, emu)
    assert (p["frames"], p["frames_only_emulated"], p["frames_only_x86"]) == (3, 1, 0)
    assert p["frames_same_face_count"] == 2  # frames 0 and 2; frame 1 lost its face
    assert (p["faces_x86"], p["faces_emulated"], p["faces_matched"], p["labels_agreeing"]) == (3, 2, 2, 1)
    assert p["label_agreement"] == 0.5
    assert p["confidence_abs_diff_mean"] == pytest.approx(0.05)


def test_match_uses_each_face_once_and_respects_min_iou() -> None:
    a = _frame(0, _face([0, 0, 100, 100], "x"), _face([300, 300, 50, 50], "y"))
    b = _frame(0, _face([2, 2, 100, 100], "x"), _face([0, 0, 100, 100], "x"), _face([340, 340, 50, 50], "y"))
    pairs = parity.match(a, b)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_truth_scores_the_sample_like_the_demo() -> None:
    faces = read_faces()
    first = [f for f in faces if f.first_frame == 0]
    rec = _frame(0, *(_face(list(f.box), f.label) for f in first[:-1]), _face([0, 0, 5, 5], "anger"))
    t = parity.truth([rec], faces)
    assert t["faces"] == len(first) and t["found"] == len(first) - 1 and t["labels_right"] == len(first) - 1


def test_parse_lines_rejects_bad_records_with_the_line() -> None:
    good = json.dumps(_frame(0, _face([0, 0, 9, 9], "happiness")))
    assert len(parity.parse_lines([good, ""], "x")) == 1
    with pytest.raises(EmulationError, match="x:2: not JSON"):
        parity.parse_lines([good, "{oops"], "x")
    with pytest.raises(EmulationError, match="x:1: not a fer-edge frame record"):
        parity.parse_lines([json.dumps({"frame": 0})], "x")
    with pytest.raises(EmulationError, match="not strictly increasing"):
        parity.parse_lines([good, good], "x")


def test_chroot_command_binds_proc_and_dev_not_sys_and_cuts_the_network(tmp_path: Path) -> None:
    cmd = rootfs.chroot_command(tmp_path / "my root", ["/bin/echo", "hi there"], {"FER_EDGE_SOURCE": "/a b.mp4"})
    assert cmd[:cmd.index("--")] == ["unshare", "--mount", "--net", "--pid", "--fork", "--propagation", "private"]
    script = cmd[cmd.index("-c") + 1]
    assert "mount -t proc" in script and "--rbind /dev" in script and "/sys" not in script
    assert f"'{tmp_path / 'my root'}'" in script  # quoted
    assert cmd[-2:] == ["/bin/echo", "hi there"] and "FER_EDGE_SOURCE=/a b.mp4" in cmd
    # the script itself is valid sh that hands its arguments on unchanged
    fake = script.split("exec chroot")[0].replace("mount ", ": ")
    out = subprocess.run(["/bin/sh", "-c", fake + 'printf "%s|" "$@"', "x", "a b", "c"], capture_output=True,
                         text=True, check=True).stdout
    assert out == "a b|c|"


def test_the_guest_sees_only_its_own_processes() -> None:
    """In the cached rootfs (root, qemu-aarch64): the guest's /proc lists its own PID namespace, where the command
    is PID 1, never the host's processes."""
    root = rootfs.default_rootfs()
    problem = rootfs.host_problem()
    if problem or rootfs.rootfs_info(root) is None:
        pytest.skip(problem or f"no cached rootfs at {root}")
    rootfs.enable_binfmt(echo=lambda _: None)
    cmd = rootfs.chroot_command(root, ["/bin/sh", "-c", 'echo "$$"; ls /proc | grep -c "^[0-9]"'])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    pid, count = res.stdout.split()
    assert pid == "1" and int(count) <= 3, res.stdout  # sh and ls (and grep), not the host's hundreds
    assert not Path(root / "proc" / "self").exists()  # nothing stays mounted on the host


def test_emulation_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    x86_cpuinfo = "processor : 0\nvendor_id : GenuineIntel\nflags : fpu avx2\n"
    arm_cpuinfo = "processor : 0\nFeatures : fp asimd\nCPU part : 0xd0b\n"
    monkeypatch.delenv("FER_EDGE_EMULATION", raising=False)
    monkeypatch.setattr(sysinfo.platform, "machine", lambda: "aarch64")
    assert "qemu-user" in sysinfo.emulation(x86_cpuinfo) and "GenuineIntel" in sysinfo.emulation(x86_cpuinfo)
    assert sysinfo.emulation(arm_cpuinfo) is None
    monkeypatch.setattr(sysinfo.platform, "machine", lambda: "x86_64")
    assert sysinfo.emulation(x86_cpuinfo) is None
    monkeypatch.setenv("FER_EDGE_EMULATION", "qemu-user: test")
    assert sysinfo.emulation(x86_cpuinfo) == "qemu-user: test"
    assert sysinfo.describe("d")["emulated"] == "qemu-user: test"


def _deploy(tmp_path: Path, device: str, *extra: str) -> Path:
    out = tmp_path / device
    res = CliRunner().invoke(cli, ["deploy", "--device", device, "--bundle", str(DEFAULT_BUNDLE), "--out", str(out),
                                    *extra])
    assert res.exit_code == 0, res.output
    return out


def test_check_deploy_refuses_what_the_emulator_cannot_run(tmp_path: Path) -> None:
    assert check_deploy(_deploy(tmp_path, "rpi5"))["device"] == "rpi5"
    with pytest.raises(EmulationError, match="Raspberry Pi OS bookworm"):
        check_deploy(_deploy(tmp_path, "x86"))
    with pytest.raises(EmulationError, match="not a `fer-edge deploy` folder"):
        check_deploy(tmp_path)
    res = subprocess.run([sys.executable, "-c", "from fer_edge.cli import main; main()", "devices", "emulate",
                          str(tmp_path)], capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "not a `fer-edge deploy` folder" in res.stderr and "Traceback" not in res.stderr


def _mounts_under(root: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in line]


@pytest.mark.slow
def test_emulated_raspberry_pi_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy for rpi5 with its aarch64 wheels, then the whole emulated run: about 6-10 min with the rootfs cached
    under /var/cache/fer-edge (the first build adds 6-8 min of debootstrap)."""
    problem = rootfs.host_problem()
    if problem:
        pytest.skip(f"no emulated Raspberry Pi on this machine: {problem}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(rootfs.default_rootfs().parent / "pip-cache"))  # reruns offline-fast
    try:
        rootfs.enable_binfmt(echo=lambda s: None)
        info = rootfs.ensure_rootfs(echo=lambda s: None)
    except EmulationError as e:
        pytest.skip(f"no emulated Raspberry Pi on this machine: {e}")
    root = Path(info["path"])
    deploy = tmp_path / "rpi5"
    res = CliRunner().invoke(cli, ["deploy", "--device", "rpi5", "--bundle", str(DEFAULT_BUNDLE), "--out",
                                    str(deploy), "--wheels"])
    if res.exit_code != 0 and "pip download" in res.output:
        pytest.skip(f"cannot fetch the aarch64 wheels here: {res.output.strip().splitlines()[-1]}")
    assert res.exit_code == 0, res.output
    ferplus = Path(os.environ.get("FER_EDGE_DATA", REPO.parent / "shared" / "data")) / "ferplus"
    out = tmp_path / "emulated"
    record = emulate(deploy, out, EmulateOptions(frames=9, stop_after=3, data=ferplus if ferplus.is_dir() else None,
                                                 bench_faces=30), echo=lambda s: print(s, file=sys.stderr))
    assert record["ok"] and all(s["ok"] for s in json.loads((out / "emulate.json").read_text())["steps"])
    life = record["lifecycle"]
    assert life["exit_code"] == 0 and life["json_lines"] >= 3 and life["video_frames"] >= 1
    assert "SIGTERM" in (life["stopped_by"] or "")
    p = json.loads((out / "parity.json").read_text())
    assert p["vs_x86"]["frames"] == 9 and p["vs_x86"]["faces_x86"] > 0
    assert p["sample_truth"]["emulated"]["faces"] == p["sample_truth"]["x86"]["faces"] > 0
    merged = json.loads((out / "report.json").read_text())
    devices = [r["device"] for r in merged["runs"]]
    assert [bool(d.get("emulated")) for d in devices] == [True, False]
    assert devices[0]["arch"] == "aarch64" and "qemu-user" in devices[0]["emulated"]
    assert "emulated" in (out / "report.md").read_text()
    assert not _mounts_under(root), "mounts left behind"
    work = record["emulation"]["work"]
    assert work.startswith("/tmp/fer-edge-emulate-") and not (root / work.lstrip("/")).exists(), "work folder left"


def _fake_debootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "debootstrap").write_text("#!/bin/sh\n" + body)
    (bin_dir / "debootstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0 or not rootfs.shutil.which("unshare"),
                    reason="needs root and unshare (debootstrap runs in a private mount namespace)")
def test_ensure_rootfs_builds_whole_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a stand-in debootstrap: ARGS ... SUITE TARGET MIRROR; makes the target look like a bookworm base
    _fake_debootstrap(tmp_path, monkeypatch, 'for a; do t="$m"; m="$a"; done\n'
                      'echo "$@" > "$t/args"; mkdir -p "$t/usr/bin" "$t/tmp"; touch "$t/usr/bin/python3"\n')
    root = tmp_path / "cache" / "pi-rootfs"
    info = rootfs.ensure_rootfs(root, mirror="http://mirror.example/debian", echo=lambda s: None)
    assert info["reused"] is False and rootfs.rootfs_info(root) is not None
    args = (root / "args").read_text()
    assert "--arch=arm64" in args and "python3,python3-venv,python3-pip,ca-certificates" in args
    assert args.split()[-3:] == ["bookworm", args.split()[-2], "http://mirror.example/debian"]
    assert rootfs.ensure_rootfs(root, echo=lambda s: None)["reused"] is True
    assert [p.name for p in root.parent.iterdir() if not p.name.startswith(".pi-rootfs.lock")] == ["pi-rootfs"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0 or not rootfs.shutil.which("unshare"),
                    reason="needs root and unshare (debootstrap runs in a private mount namespace)")
def test_ensure_rootfs_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_debootstrap(tmp_path, monkeypatch, 'echo "E: Failed getting release file" >&2; exit 1\n')
    root = tmp_path / "cache" / "pi-rootfs"
    with pytest.raises(EmulationError, match=r"debootstrap failed .*release file"):
        rootfs.ensure_rootfs(root, mirror="http://mirror.example/debian", echo=lambda s: None)
    assert not root.exists() and [p.name for p in root.parent.iterdir()] == [".pi-rootfs.lock"]
    root.mkdir()
    (root / "something").write_text("x")
    with pytest.raises(EmulationError, match="no finished fer-edge rootfs"):
        rootfs.ensure_rootfs(root, echo=lambda s: None)


def test_the_merged_emulated_and_x86_bench_draws_every_picture(tmp_path: Path) -> None:
    """What the emulated run's bench step writes from its merged document (an aarch64 run marked emulated and an
    x86 run): the Pareto PNG and every plot of report.html are drawn. Both catch a drawing error and only say why
    the picture is missing, so a broken plot module (a NameError) shows here, not as a failed command."""
    pytest.importorskip("matplotlib")
    import cv2
    import numpy as np

    from fer_edge.benchmarks import pareto, results
    from fer_edge.benchmarks.html import html_report
    from fer_edge.benchmarks.render import markdown

    def run(run_id: str, name: str, arch: str, ms: float, emulated: str | None) -> dict:
        device = {"name": name, "cpu": "cpu", "arch": arch, "cores": 4, "os": "Linux", "python": "CPython 3.11",
                  "backends": {"litert": "2.3.0"}, "load_average": [0.2, 0.2, 0.2], "emulated": emulated}
        rows = [results.empty_row(model="m", bundle=f"deploy/bundle-{p}", backbone="compact", format="tflite",
                                  file="m.tflite", precision=prec, backend="litert", threads=1, status="passed",
                                  latency_p50_ms=ms * k, accuracy=acc, parameters=1_300_000, flops=13_000_000,
                                  size_mb=1.3, latency_samples=[ms * k] * 5,
                                  per_class_f1={"happy": 0.9, "sad": 0.6})
                for p, prec, k, acc in (("a", "int8", 1.0, 0.81), ("a", "fp32", 2.0, 0.82), ("b", "int8", 1.5, 0.84))]
        return {"id": run_id, "created": "2026-12-02T00:00:00+00:00", "device": device, "settings": {},
                "data": {"faces": 200}, "notes": [], "wall_s": 1.0, "rows": rows, "pipeline": []}

    doc = results.merge([results.document([run("emu", "rpi5 (emulated)", "aarch64", 9.0, "qemu-user: test")]),
                         results.document([run("x86", "x86", "x86_64", 0.8, None)])])
    picture, why = pareto.write_png(doc, tmp_path / "pareto.png")
    assert picture is not None and not why, why
    image = cv2.imdecode(np.frombuffer(picture.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.std() > 10
    html = html_report(doc, "fer-edge: emulated Raspberry Pi vs x86")
    assert "could not be drawn" not in html and 'id="plot-backbone-pareto"' in html
    assert "rpi5 (emulated)" in markdown(doc)
