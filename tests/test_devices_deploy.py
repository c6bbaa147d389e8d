"""`fer-edge deploy`: the folder it writes is executed, not read: run.sh on the sample clip, the unit's ExecStart
as systemd runs it (its Environment= and EnvironmentFile=, its escaping), the Docker variant through a stand-in
docker that maps the mounts, and the checks on --user / --install-dir."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.runtime import readable_frames

from fer_edge.bundle import load_bundle, sha256_file
from fer_edge.cli import cli
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.cli import run as run_command

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
DEFAULT = REPO / "fer_edge" / "assets" / "default_bundle"
PREFIX = Path(sys.prefix)  # where this test's fer-edge is installed: $PREFIX/bin/fer-edge


@pytest.fixture(scope="module")
def tiny(bench_bundle: Path) -> Path:
    return bench_bundle


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An x86 deployment of the default bundle, made once for the tests that only run it."""
    out = tmp_path_factory.mktemp("deploy") / "dist"
    code, text = invoke("deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(out))
    assert code == 0, text
    return out


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    if isinstance(res.exception, FerEdgeError):
        return res.exception.exit_code, res.output + f"error: {res.exception}"
    return res.exit_code, res.output


def needs_prefix() -> None:
    if not (PREFIX / "bin" / "fer-edge").exists():
        pytest.skip(f"no {PREFIX}/bin/fer-edge (fer-edge not installed as a script in this environment)")


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def run_sh(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    return subprocess.run(["bash", str(folder / "run.sh"), *args], env={**full, **env}, capture_output=True,
                          text=True, timeout=300, check=False)


def fake_fer_edge(tmp_path: Path) -> Path:
    """A venv whose bin/fer-edge prints its arguments as JSON: what run.sh passes, exactly."""
    venv = tmp_path / "argv-venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "fer-edge"
    exe.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    exe.chmod(0o755)
    return venv


def test_deploy_rpi5_folder(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "rpi5", "--bundle", str(tiny), "--out", str(out))
    assert code == 0, text
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "bundle/manifest.json", "bundle/model_int8.tflite", "deploy.json", "fer-edge.env",
                     "fer-edge.service", "install.sh", "requirements.txt", "run.sh",
                     "wheels/fer_edge-0.1.0-py3-none-any.whl"]
    shipped = load_bundle(out / "bundle")
    (art,) = shipped.manifest.artifacts
    assert (art.format, art.precision) == ("tflite", "int8")
    shipped.verify(art)
    assert sha256_file(out / "bundle" / art.file) == sha256_file(tiny / art.file)
    reqs = [ln for ln in (out / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert all("==" in r for r in reqs) and "ai-edge-litert==2.3.0" in reqs
    assert not any(r.startswith(("fer-edge", "tensorflow", "onnxruntime", "openvino")) for r in reqs)
    for script in ("run.sh", "install.sh"):
        assert (out / script).stat().st_mode & stat.S_IXUSR
        assert subprocess.run(["bash", "-n", str(out / script)], check=False).returncode == 0
    record = json.loads((out / "deploy.json").read_text())
    assert record["device"] == "rpi5" and record["artifacts"][0]["sha256"] == art.sha256
    wheel = out / "wheels" / "fer_edge-0.1.0-py3-none-any.whl"
    assert record["wheels"]["sha256"] == {wheel.name: sha256_file(wheel)} and not record["wheels"]["complete"]
    assert record["wheels"]["python"] == "3.11" and "--platform" in record["wheels"]["pip_args"]
    assert "tflite-runtime" in (out / "README.md").read_text()
    assert "--wheels" in text  # the note: this folder needs network to install


def test_run_sh_runs_the_sample_clip(x86: Path) -> None:
    """The pre-stop hook's check: FER_EDGE_SOURCE + --max-frames 3 --json - gives three JSON lines."""
    needs_prefix()
    res = run_sh(x86, "--max-frames", "3", "--json", "-", FER_EDGE_SOURCE=str(SAMPLE), FER_EDGE_VENV=str(PREFIX))
    assert res.returncode == 0, res.stderr
    lines = json_lines(res.stdout)
    assert len(lines) == 3 and all("faces" in d for d in lines)
    assert sum(len(d["faces"]) for d in lines) >= 3  # the sample frames hold 2-3 faces each


def test_run_sh_execs_fer_edge_and_stops_on_sigterm(x86: Path) -> None:
    """The service's main PID is fer-edge itself (exec: NotifyAccess=main, SIGTERM reach it), and SIGTERM stops it
    with exit 0 and whole JSON lines."""
    needs_prefix()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}, "FER_EDGE_SOURCE": str(SAMPLE),
           "FER_EDGE_VENV": str(PREFIX)}
    proc = subprocess.Popen(["bash", str(x86 / "run.sh"), "--json", "-", "--all-frames"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert any(a.endswith(b"/fer-edge") for a in cmdline) and b"run" in cmdline and b"bash" not in cmdline[0]
    assert proc.returncode == 0 and "SIGTERM" in err, err  # stopped by the signal, not by the end of the clip
    lines = [first, *rest.splitlines()]
    assert all("faces" in json.loads(ln) for ln in lines if ln.strip())


def test_watchdog_signal_finalizes_outputs(x86: Path, tmp_path: Path) -> None:
    """A watchdog timeout replayed: the signal the unit names (systemd's default SIGABRT when it names none) sent
    to a running run.sh stops it with exit 0 and a finalized video."""
    needs_prefix()
    unit = parse_unit((x86 / "fer-edge.service").read_text())
    sig = signal.Signals[unit.get("WatchdogSignal", ["SIGABRT"])[0]]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}, "FER_EDGE_SOURCE": str(SAMPLE),
           "FER_EDGE_VENV": str(PREFIX)}
    video = tmp_path / "cam.mp4"
    proc = subprocess.Popen(["bash", str(x86 / "run.sh"), "--json", "-", "--all-frames", "--save", str(video)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("{")  # in the frame loop
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and sig.name in err, err
    assert readable_frames(video) >= 1


def test_a_closed_stdout_stops_the_run_quietly(x86: Path, tmp_path: Path) -> None:
    """`./run.sh --json - --save out.mp4 | head -1`: the reader goes away after one line; the run stops like a Unix
    tool (exit 0, no error, no traceback) and the video it was also writing is finalized."""
    import cv2

    needs_prefix()
    clip = tmp_path / "long.mp4"  # long enough to be still running when the pipe closes
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (96, 96))
    for i in range(3000):
        writer.write(np.full((96, 96, 3), i % 255, np.uint8))
    writer.release()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}, "FER_EDGE_SOURCE": str(clip),
           "FER_EDGE_VENV": str(PREFIX)}
    video = tmp_path / "out.mp4"
    proc = subprocess.Popen(["bash", str(x86 / "run.sh"), "--json", "-", "--all-frames", "--save", str(video)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("{")
    proc.stdout.close()  # like head -1 exiting
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert "stdout closed by its reader" in err and "error" not in err.lower() and "Traceback" not in err, err
    assert 1 <= readable_frames(video) < 3000


def test_an_output_under_a_file_says_so(x86: Path, tmp_path: Path) -> None:
    """FER_EDGE_ARGS=--save FILE/x.mp4 (a parent that is a file): one line naming it, not "File exists"."""
    needs_prefix()
    (tmp_path / "plain").write_text("a file")
    for option, name in (("--save", "x.mp4"), ("--json", "x.jsonl")):
        res = run_sh(x86, option, str(tmp_path / "plain" / name), "--max-frames", "1", FER_EDGE_SOURCE=str(SAMPLE),
                     FER_EDGE_VENV=str(PREFIX))
        assert res.returncode == 1, res.stderr
        assert res.stderr.strip().splitlines()[-1] == f"error: {option} {tmp_path}/plain/{name}: {tmp_path}/plain is " \
            "not a folder", res.stderr


@pytest.mark.parametrize(("where", "home", "private_tmp", "rw"), [
    ("/opt/fer-edge", True, True, False), ("/home/pi/fer-edge", False, True, False),
    ("/root/fer-edge", False, True, False), ("/usr/local/fer-edge", True, True, True),
    ("/tmp/fer-edge", True, False, False),
])
def test_unit_sandbox_keeps_the_install_folder_writable(where: str, home: bool, private_tmp: bool, rw: bool) -> None:
    from fer_edge.devices.systemd import unit as make_unit

    unit = parse_unit(make_unit("x", where, "pi", container=False))
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["full"]
    assert ("ProtectHome" in unit) == home and ("PrivateTmp" in unit) == private_tmp
    assert unit.get("ReadWritePaths") == ([where] if rw else None)


def test_run_sh_arguments(x86: Path, tmp_path: Path) -> None:
    """What run.sh hands to `fer-edge run` in each case, and that click's own parser accepts all of it."""
    venv = fake_fer_edge(tmp_path)
    cases = {
        "camera": ({}, ["--camera", "0"]),
        "other camera": ({"FER_EDGE_CAMERA": "2"}, ["--camera", "2"]),
        "file": ({"FER_EDGE_SOURCE": str(SAMPLE)}, ["--source", str(SAMPLE)]),
        "stream": ({"FER_EDGE_SOURCE": "rtsp://user:p w@cam/stream"}, ["--source", "rtsp://user:p w@cam/stream"]),
    }
    for name, (env, want) in cases.items():
        res = run_sh(x86, "--json", "out dir/a b.jsonl", FER_EDGE_VENV=str(venv), FER_EDGE_ARGS="--every 2", **env)
        assert res.returncode == 0, (name, res.stderr)
        argv = json.loads(res.stdout)
        assert argv[0] == "run" and argv[1:3] == want, name
        assert argv[-4:] == ["--every", "2", "--json", "out dir/a b.jsonl"], name
        assert argv[argv.index("--model") + 1] == str(x86 / "bundle")
        assert argv[argv.index("--backend") + 1] == "litert" and argv[argv.index("--precision") + 1] == "int8"
        ctx = run_command.make_context("run", argv[1:])  # a non-existent option fails here
        assert ctx.params["json_out"] == "out dir/a b.jsonl" and ctx.params["every"] == 2
    example = next(ln for ln in (x86 / "fer-edge.env").read_text().splitlines() if ln.startswith("# FER_EDGE_ARGS="))
    run_command.make_context("run", ["--camera", "0", *example.split("=", 1)[1].split()])  # the example is valid


def test_run_sh_without_a_fer_edge_says_so(x86: Path, tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(x86 / "run.sh")], env={"PATH": "/usr/bin:/bin",
                                                            "FER_EDGE_VENV": str(tmp_path / "none")},
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith("error: no fer-edge in")


def parse_unit(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def systemd_unescape(word: str, dollars: bool = False) -> str:
    """Specifiers ('%%' is '%'); in ExecStart's arguments also variables ('$$' is '$'), never in its program."""
    assert "%" not in word.replace("%%", ""), f"an unescaped specifier in {word!r}"
    word = word.replace("%%", "%")
    return word.replace("$$", "$") if dollars else word


def test_exec_start_runs_as_systemd_would(tmp_path: Path) -> None:
    """Install dir with a space, '%' and '$' in it: the unit's ExecStart, Environment= and EnvironmentFile=
    resolved the way systemd does, then run; systemd-analyze (where installed) checks the same unit."""
    needs_prefix()
    where = tmp_path / "fer edge %n $HOME"
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(DEFAULT), "--out", str(where),
                        "--install-dir", str(where), "--user", "root")
    assert code == 0, text
    unit = parse_unit((where / "fer-edge.service").read_text())
    assert unit["Type"] == ["notify"] and unit["WatchdogSec"] == ["30"] and unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["on-failure"] and unit["StartLimitBurst"] == ["5"] and unit["RestartSec"] == ["5"]
    assert unit["KillSignal"] == ["SIGTERM"] and unit["TimeoutStopSec"] == ["30"]
    assert unit["WatchdogSignal"] == ["SIGTERM"]  # a watchdog stop finalizes the outputs too
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["full"]
    assert unit["ProtectHome"] == ["read-only"] and "PrivateTmp" not in unit  # installed under /tmp here
    assert unit["StandardOutput"] == ["journal"] and unit["StandardError"] == ["journal"]
    env_file = Path(systemd_unescape(unit["EnvironmentFile"][0].removeprefix("-")))
    assert env_file == where / "fer-edge.env" and env_file.is_file()
    env_file.write_text(env_file.read_text() + f"FER_EDGE_SOURCE={SAMPLE}\nFER_EDGE_VENV={PREFIX}\n"
                        "FER_EDGE_ARGS=--max-frames 3 --json -\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for assignment in unit["Environment"]:
        env.update(kv.split("=", 1) for kv in shlex.split(assignment))
    env.update(ln.split("=", 1) for ln in env_file.read_text().splitlines() if ln and not ln.startswith("#"))
    program, *args = shlex.split(unit["ExecStart"][0])
    argv = [systemd_unescape(program), *(systemd_unescape(a, dollars=True) for a in args)]
    assert argv == [str(where / "run.sh")]
    cwd = Path(systemd_unescape(unit["WorkingDirectory"][0]))
    res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert len(json_lines(res.stdout)) == 3
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "verify", str(where / "fer-edge.service")], capture_output=True,
                               text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stderr
        (where / "run.sh").rename(where / "moved.sh")  # and it does look at the path it resolved
        check = subprocess.run(["systemd-analyze", "verify", str(where / "fer-edge.service")], capture_output=True,
                               text=True, timeout=60, check=False)
        assert check.returncode != 0 and f"{where}/run.sh" in check.stderr


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--user", "pi\nExecStartPre=/bin/rm", "not a user name"),
    ("--user", "a b", "not a user name"),
    ("--user", "-rf", "not a user name"),
    ("--install-dir", "/opt/fer\nExecStartPre=/x", "contains '\\n'"),
    ("--install-dir", '/opt/"x"', "contains '\"'"),
    ("--install-dir", "/opt/a\\b", "contains '\\\\'"),
    ("--install-dir", "opt/fer-edge", "must be an absolute path"),
    ("--install-dir", "/opt/../etc", "must be an absolute path"),
])
def test_user_and_install_dir_are_checked(tmp_path: Path, option: str, value: str, says: str) -> None:
    out = tmp_path / "dist"
    res = subprocess.run([sys.executable, "-m", "fer_edge.cli", "deploy", "--device", "rpi5", "--bundle", str(DEFAULT),
                          "--out", str(out), option, value], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2 and not out.exists()
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {option}") and says in line, line


def fake_docker(tmp_path: Path) -> Path:
    """A `docker` that runs `docker run ... IMAGE CMD...` here: container paths of its -v mounts mapped back to the
    host, -w likewise; other options recorded. It proves what the Docker run.sh would run in the container."""
    bin_dir = tmp_path / "docker-bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f"#!{sys.executable}\n" + '''import json, os, sys
args = sys.argv[1:]
assert args[0] == "run", args
mounts, opts, cwd, i = {}, [], None, 1
while args[i].startswith("-"):
    if args[i] == "-v":
        host, ctr = args[i + 1].split(":")[:2]
        mounts[ctr] = host
        i += 2
    elif args[i] == "-w":
        cwd = args[i + 1]
        i += 2
    elif args[i] in ("--device", "--stop-timeout"):
        opts += args[i:i + 2]
        i += 2
    else:
        opts.append(args[i])
        i += 1
image, cmd = args[i], args[i + 1:]
def host(p):
    for ctr, h in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if p == ctr or p.startswith(ctr + "/"):
            return h + p[len(ctr):]
    return p
with open(os.environ["DOCKER_LOG"], "w") as f:
    json.dump({"image": image, "mounts": mounts, "opts": opts, "cmd": cmd, "cwd": cwd}, f)
os.chdir(host(cwd))
os.execvp(cmd[0], [cmd[0], *[host(a) for a in cmd[1:]]])
''')
    script.chmod(0o755)
    return bin_dir


def test_jetson_nano_docker_run_sh_runs(tmp_path: Path) -> None:
    needs_prefix()
    out = tmp_path / "nano"
    code, text = invoke("deploy", "--device", "jetson-nano", "--bundle", str(DEFAULT), "--out", str(out))
    assert code == 0, text
    docker_bin, log = fake_docker(tmp_path), tmp_path / "docker.json"
    env = {"PATH": f"{docker_bin}:{PREFIX / 'bin'}:{os.environ['PATH']}", "DOCKER_LOG": str(log)}
    work = tmp_path / "work"
    work.mkdir()
    res = subprocess.run(["bash", str(out / "run.sh"), "--max-frames", "3", "--json", "out.jsonl"], cwd=work,
                         env={**os.environ, **env, "FER_EDGE_SOURCE": str(SAMPLE)}, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    call = json.loads(log.read_text())
    assert call["image"] == "fer-edge:latest" and "--rm" in call["opts"] and "--init" in call["opts"]
    assert call["mounts"] == {"/app/bundle": str(out / "bundle"), "/work": str(work),
                              "/input/sample.mp4": str(SAMPLE)}
    assert call["cmd"][:2] == ["fer-edge", "run"] and call["cmd"][2:4] == ["--source", "/input/sample.mp4"]
    run_command.make_context("run", call["cmd"][2:])
    assert len([json.loads(ln) for ln in (work / "out.jsonl").read_text().splitlines()]) == 3
    # the camera case: passed through as a device
    argv_bin = fake_fer_edge(tmp_path) / "bin"
    res = subprocess.run(["bash", str(out / "run.sh"), "--max-frames", "1"], cwd=work,
                         env={**os.environ, **env, "PATH": f"{docker_bin}:{argv_bin}:{os.environ['PATH']}"},
                         capture_output=True, text=True, timeout=120, check=False)
    call = json.loads(log.read_text())
    assert call["opts"][-2:] == ["--device", "/dev/video0"] and call["cmd"][2:4] == ["--camera", "0"], res.stderr
    docker = (out / "Dockerfile").read_text()
    assert "--no-index --find-links /app/wheels" in docker and "FROM python:3.11" in docker
    unit = parse_unit((out / "fer-edge.service").read_text())
    assert unit["Type"] == ["simple"] and "Requires" in unit and "WatchdogSec" not in unit


def test_deploy_jetsons(tiny: Path, tmp_path: Path) -> None:
    code, text = invoke("deploy", "--device", "jetson-nano", "--bundle", str(tiny), "--out", str(tmp_path / "n"))
    assert code == 0, text
    keys = {a.key for a in load_bundle(tmp_path / "n" / "bundle").manifest.artifacts}
    assert keys == {"tflite:int8", "onnx:fp32"}
    readme = (tmp_path / "n" / "README.md").read_text()
    assert "Python 3.6" in readme and "container" in readme
    code, text = invoke("deploy", "--device", "jetson-orin-nano", "--bundle", str(tiny), "--out",
                        str(tmp_path / "o"), "--threads", "3", "--user", "ubuntu")
    assert code == 0, text
    assert not (tmp_path / "o" / "Dockerfile").exists()
    assert "--threads 3" in (tmp_path / "o" / "run.sh").read_text()
    assert "User=ubuntu" in (tmp_path / "o" / "fer-edge.service").read_text()
    assert "numpy==2.2.6" in (tmp_path / "o" / "requirements.txt").read_text()  # JetPack 6 has Python 3.10
    record = json.loads((tmp_path / "o" / "deploy.json").read_text())
    assert record["wheels"]["python"] == "3.10" and "manylinux_2_35_aarch64" in record["wheels"]["pip_args"]
    assert "manylinux_2_36_aarch64" not in record["wheels"]["pip_args"]


def test_a_failed_extra_artifact_is_left_out_with_a_note(tiny: Path, tmp_path: Path) -> None:
    """The GPU path's onnx:fp32 marked failed in the bundle: not shipped, and the note says why."""
    bad = tmp_path / "bundle"
    shutil.copytree(tiny, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        if (art["format"], art["precision"]) == ("onnx", "fp32"):
            art.update(status="failed", status_reason="max |diff| 0.31 vs Keras")
    (bad / "manifest.json").write_text(json.dumps(manifest, indent=2))
    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "jetson-orin-nano", "--bundle", str(bad), "--out", str(out))
    assert code == 0, text
    assert {a.key for a in load_bundle(out / "bundle").manifest.artifacts} == {"tflite:int8"}
    (note,) = [n for n in json.loads((out / "deploy.json").read_text())["notes"] if "onnx:fp32" in n]
    assert "failed its validation (max |diff| 0.31 vs Keras)" in note and "not shipped" in note
    assert note in (out / "README.md").read_text()


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
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(tmp_path / "y"),
                        "--no-index")
    assert code != 0 and "--no-index applies to --wheels" in text and not (tmp_path / "y").exists()
    (tmp_path / "empty").mkdir()
    code, text = invoke("deploy", "--device", "rpi4", "--bundle", str(tiny), "--out", str(tmp_path / "z"),
                        "--wheels", "--no-index", "--find-links", str(tmp_path / "empty"))
    assert code != 0 and "wheels from --find-links only (--no-index) failed: " in text and "ai-edge-litert" in text
    assert not (tmp_path / "z").exists()  # nothing half-made


def test_deploy_never_ships_a_corrupt_artifact(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(tiny, bad)
    f = bad / "model_int8.tflite"
    f.write_bytes(f.read_bytes()[:-8] + b"\x00" * 8)
    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "rpi5", "--bundle", str(bad), "--out", str(out))
    assert code != 0 and "sha256" in text and not out.exists()
