"""sd_notify: the datagrams systemd's Type=notify + WatchdogSec unit waits for, received on a socket bound here the
way systemd binds $NOTIFY_SOCKET; once from the Notifier alone, once from a deployed run.sh on the sample clip."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.cli import cli
from fer_edge.runtime.notify import Notifier

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"


def listener(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    return s


def drain(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except TimeoutError:
            return out


def test_notifier_messages_and_watchdog_rate(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with listener(path) as s:
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
        assert n.enabled and n.interval == 15.0
        assert n.ready("reading sample.mp4") and not n.tick()  # the ready message counts as the first ping
        n._last -= 16
        assert n.tick() and not n.tick()
        assert n.stopping()
        assert drain(s) == ["READY=1\nSTATUS=reading sample.mp4", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_abstract_socket_and_no_socket() -> None:
    name = f"fer-edge-test-{os.getpid()}"
    with listener("\0" + name) as s:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("ok")
        assert drain(s) == ["STATUS=ok"]
    off = Notifier({})
    assert not off.enabled and not off.ready() and not off.tick()
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent/sock", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.interval is None and not other.ready()  # the watchdog is another process's; a dead socket is fine


def test_deployed_run_notifies_systemd(tmp_path: Path) -> None:
    if not (Path(sys.prefix) / "bin" / "fer-edge").exists():
        pytest.skip("fer-edge is not installed as a script here")
    out = tmp_path / "dist"
    bundle = REPO / "fer_edge" / "assets" / "default_bundle"
    res = CliRunner().invoke(cli, ["deploy", "--device", "x86", "--bundle", str(bundle), "--out", str(out)])
    assert res.exit_code == 0, res.output
    path = str(tmp_path / "notify.sock")
    with listener(path) as s:
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1", "FER_EDGE_SOURCE": str(SAMPLE),
               "FER_EDGE_VENV": sys.prefix}
        env.pop("WATCHDOG_PID", None)
        run = subprocess.run(["bash", str(out / "run.sh"), "--max-frames", "5", "--json", str(tmp_path / "o.jsonl")],
                             env=env, capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr
        got = drain(s)
    assert got[0].startswith("READY=1") and got[-1] == "STOPPING=1"
    assert got.count("WATCHDOG=1") >= 4  # a ping per frame at this watchdog period
