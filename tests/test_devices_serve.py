"""`fer-edge deploy --serve`: the generated run.sh is executed and serves the sample clip over HTTP (healthz, the
token on /api/faces), stops with exit 0 on SIGTERM; the token stays in serve.token (mode 0600), out of deploy.json,
the scripts and the logs."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers.serve import http_get, terminate

from fer_edge.cli import cli
from fer_edge.errors import FerEdgeError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
DEFAULT = REPO / "fer_edge" / "assets" / "default_bundle"
PREFIX = Path(sys.prefix)  # $PREFIX/bin/fer-edge: the fer-edge of this test's environment


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    if isinstance(res.exception, FerEdgeError):
        return res.exception.exit_code, res.output + f"error: {res.exception}"
    return res.exit_code, res.output


def deploy(out: Path, *args: str) -> Path:
    code, text = invoke("deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(out), "--serve", *args)
    assert code == 0, text
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """(status, body); (0, b"") while nothing answers yet."""
    try:
        return http_get(url, token)[:2]
    except OSError:
        return 0, b""


def serve_run_sh(folder: Path, token: str | None, args: tuple[str, ...] = (), host: str = "127.0.0.1",
                 **env: str) -> str:
    """Start run.sh ``args`` on the sample on a free port, check /healthz and /api/faces on ``host``, SIGTERM it:
    exit 0. Its output."""
    for module in ("aiohttp", "prometheus_client"):
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[serve]'")
    if not (PREFIX / "bin" / "fer-edge").exists():
        pytest.skip(f"no {PREFIX}/bin/fer-edge (fer-edge not installed as a script in this environment)")
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("FER_EDGE_")}
    proc = subprocess.Popen(["bash", str(folder / "run.sh"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**full, "FER_EDGE_SOURCE": str(SAMPLE), "FER_EDGE_VENV": str(PREFIX),
                                            "FER_EDGE_PORT": str(port), "PYTHONUNBUFFERED": "1", **env})
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True).start()
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 180  # a liveness wait (model load on a busy CPU), not a timing assertion
        while get(base + "/healthz")[0] != 200:
            assert proc.poll() is None, f"run.sh exited {proc.returncode}: {''.join(out)[-2000:]}"
            assert time.monotonic() < deadline, f"no 200 from /healthz: {''.join(out)[-2000:]}"
            time.sleep(0.5)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        # exec'd: the service's main PID is fer-edge itself (Type=notify, SIGTERM reach it)
        assert any(a.endswith(b"/fer-edge") for a in cmdline) and b"serve" in cmdline, cmdline
        assert b"bash" not in cmdline[0] and b"--model" in cmdline and b"litert" in cmdline
        if token:
            assert token.encode() not in b" ".join(cmdline)  # through the environment, not the command line
            assert get(base + "/api/faces")[0] == 401
            assert get(base + "/api/faces", "wrong-token-123")[0] == 401
        while True:  # the one camera's newest result, in the schema of `fer-edge run`, with the sample's faces
            status, body = get(base + "/api/faces", token)
            assert status == 200, body[:300]
            (cam,) = json.loads(body)["cameras"]
            if cam["result"] and cam["result"]["faces"]:
                break
            assert time.monotonic() < deadline, f"no faces in /api/faces: {body[:300]!r}"
            time.sleep(0.5)
        assert {"label", "confidence"} <= set(cam["result"]["faces"][0]), cam
    finally:
        rc = terminate(proc, 60, "run.sh (fer-edge serve)")
    text = "".join(out)
    assert rc == 0, text[-2000:]
    return text


def test_deploy_serve_with_token_runs(tmp_path: Path) -> None:
    """A non-loopback host gets a generated token in serve.token (0600), named but not written in deploy.json; the
    executed run.sh (bound to 127.0.0.1 here through FER_EDGE_HOST) needs it on /api/faces and never prints it."""
    out = deploy(tmp_path / "dist", "--host", "0.0.0.0", "--port", "8123")
    tok_file = out / "serve.token"
    assert stat.S_IMODE(tok_file.stat().st_mode) == 0o600
    token = tok_file.read_text().strip()
    assert len(token) >= 24
    record = json.loads((out / "deploy.json").read_text())
    assert record["serve"] == {"host": "0.0.0.0", "port": 8123, "token_file": "serve.token"}
    for name in ("deploy.json", "run.sh", "fer-edge.env", "README.md", "fer-edge.service", "requirements.txt"):
        assert token not in (out / name).read_text(), name
    env = (out / "fer-edge.env").read_text().splitlines()
    assert "FER_EDGE_HOST=0.0.0.0" in env and "FER_EDGE_PORT=8123" in env
    unit = (out / "fer-edge.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    reqs = (out / "requirements.txt").read_text()
    assert "aiohttp==" in reqs and "prometheus-client==" in reqs
    # the README's "Try it" command, run as written (a `fer-edge serve` command line, not a `fer-edge run` one)
    readme = (out / "README.md").read_text()
    try_it = re.search(r"Try it: `\./run\.sh ?([^`]*)`.*?`curl (.*?)`", readme)
    assert try_it and "/api/faces" in try_it[2] and "serve.token" in try_it[2], readme
    logs = serve_run_sh(out, token, tuple(shlex.split(try_it[1])), FER_EDGE_HOST="127.0.0.1")
    assert token not in logs
    assert "stream on" in logs  # the Try-it command's --stream reached serve


@pytest.mark.parametrize("serve", [False, True])
def test_env_file_examples_are_options_of_the_command_run_sh_runs(tmp_path: Path, serve: bool) -> None:
    """Every FER_EDGE_ARGS example in fer-edge.env parses as options of `fer-edge serve` (with --serve) or
    `fer-edge run`, the way click parses the command line run.sh builds."""
    from fer_edge.runtime.cli import run
    from fer_edge.runtime.serve.cli import serve as serve_cmd

    out = tmp_path / "dist"
    code, text = invoke("deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(out),
                        *(["--serve"] if serve else []))
    assert code == 0, text
    examples = [ln.split("=", 1)[1] for ln in (out / "fer-edge.env").read_text().splitlines()
                if ln.startswith("# FER_EDGE_ARGS=")]
    assert examples
    command = serve_cmd if serve else run
    for example in examples:
        ctx = command.make_context(command.name, ["--source", str(SAMPLE), *example.split()])
        assert ctx.params["source" if not serve else "sources"], example
    if serve:
        with pytest.raises(click.exceptions.NoSuchOption):  # what the run example would have done
            serve_cmd.make_context("serve", ["--source", str(SAMPLE), "--segment", "300"])


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_deploy_serve_ipv6_host(tmp_path: Path) -> None:
    """--host [::1] is stored bare (::1, what serve binds); unbalanced brackets are refused; the deployed run.sh
    serves on ::1, with the address given bracketed to serve (FER_EDGE_HOST=[::1])."""
    for bad in ("[::1", "::1]", "[example.com]", "[]"):
        code, text = invoke("deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(tmp_path / "d"),
                            "--serve", "--host", bad)
        assert code != 0 and f"--host {bad!r}" in text and not (tmp_path / "d").exists(), text
    out = deploy(tmp_path / "dist", "--host", "[::1]")
    assert json.loads((out / "deploy.json").read_text())["serve"]["host"] == "::1"
    assert "FER_EDGE_HOST=::1" in (out / "fer-edge.env").read_text().splitlines()
    assert not (out / "serve.token").exists()  # loopback: no token needed
    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback to bind")
    logs = serve_run_sh(out, None, host="[::1]", FER_EDGE_HOST="[::1]")
    assert "http://[::1]:" in logs


def test_deploy_serve_local_without_token_runs(tmp_path: Path) -> None:
    """The default bind, 127.0.0.1, needs no token: no serve.token, /api/faces answers without one."""
    out = deploy(tmp_path / "dist")
    assert not (out / "serve.token").exists()
    assert json.loads((out / "deploy.json").read_text())["serve"] == {"host": "127.0.0.1", "port": 8080,
                                                                       "token_file": None}
    serve_run_sh(out, None)


def test_deploy_serve_given_token(tmp_path: Path) -> None:
    out = deploy(tmp_path / "dist", "--token", "my-secret-token-42")
    assert (out / "serve.token").read_text() == "my-secret-token-42\n"
    assert "my-secret-token-42" not in (out / "deploy.json").read_text()


@pytest.mark.parametrize(("args", "says"), [
    (["--serve", "--token", "short"], "at least 8"),
    (["--serve", "--token", " my-secret-token-42"], "whitespace"),
    (["--serve", "--token", "my-secret-token-42\t"], "whitespace"),
    (["--serve", "--host", "a;rm -rf /"], "not an IP address"),
    (["--serve", "--host", '$(id)"'], "not an IP address"),
    (["--port", "9000"], "apply to --serve"),
    (["--serve", "--port", "0"], "--port"),
])
def test_deploy_serve_options_are_checked(tmp_path: Path, args: list[str], says: str) -> None:
    code, text = invoke("deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(tmp_path / "d"), *args)
    assert code != 0 and says in text, text
    assert not (tmp_path / "d").exists()


def test_deploy_serve_refused_for_container_device(tmp_path: Path) -> None:
    code, text = invoke("deploy", "--device", "jetson-nano", "--bundle", str(DEFAULT), "--out", str(tmp_path / "d"),
                        "--serve")
    assert code != 0 and "--serve is not available for jetson-nano" in text, text
