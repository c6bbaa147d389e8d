"""Helpers for the `fer-edge serve` tests: a real server in a subprocess on 127.0.0.1 (any free port), HTTP calls
with the standard library, and Server-Sent Events read line by line."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def need_serve_extra() -> None:
    for module in ("aiohttp", "prometheus_client"):
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[serve]'")


def terminate(proc: subprocess.Popen, timeout: float, what: str) -> int:
    """SIGTERM ``proc`` (when still running) and return its exit code; past ``timeout`` s it is killed and that is
    an AssertionError naming ``what``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{what} did not stop on SIGTERM within {timeout:g} s") from None


def http_get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET, with ``Authorization: Bearer TOKEN`` when a token is given."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    token: str | None = None
    lines: list[str] = field(default_factory=list)   # stdout
    errors: list[str] = field(default_factory=list)  # stderr

    def get(self, path: str, token: str | None = "default", timeout: float = 10) -> tuple[int, bytes, dict]:
        """(status, body, headers); ``token``: "default" = the server's, None = none, else that one."""
        return http_get(self.url.rstrip("/") + path, self.token if token == "default" else token, timeout)

    def json(self, path: str, token: str | None = "default") -> Any:
        status, body, _ = self.get(path, token)
        assert status == 200, (status, body[:300])
        return json.loads(body)

    def wait_for(self, predicate: Any, what: str, timeout: float = 60.0, every: float = 0.3) -> Any:
        """Poll ``predicate()`` until it returns something truthy (a liveness wait, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {''.join(self.errors)[-1500:]}"
            got = predicate()
            if got:
                return got
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what}; stderr: {''.join(self.errors)[-1500:]}")

    def events(self, query: str = "", count: int = 5, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The first ``count`` ``data:`` lines of /events?query, parsed."""
        sep = "&" if query else ""
        req = urllib.request.Request(f"{self.url}events?{query}{sep}token={self.token or ''}")
        out: list[dict[str, Any]] = []
        with urllib.request.urlopen(req, timeout=timeout) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
                    if len(out) >= count:
                        break
        return out


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@contextlib.contextmanager
def serve(*args: str, token: str | None = None, ready_timeout: float = 120,
          env: dict[str, str] | None = None) -> Iterator[Server]:
    """``fer-edge serve ARGS --port 0`` in a subprocess; yields once it prints its URL; SIGTERM at the end, which
    must stop it cleanly (exit 0)."""
    cmd = [sys.executable, "-m", "fer_edge.cli", "serve", "--port", "0", *args]
    if token:
        cmd += ["--token", token]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**ENV, **(env or {})})
    lines: list[str] = []
    errors: list[str] = []
    threading.Thread(target=_pump, args=(proc.stderr, errors), daemon=True).start()
    url = None
    deadline = time.monotonic() + ready_timeout
    try:
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"on (http://\S+/) ", line)
            if m:
                url = m.group(1)
        assert url, f"serve did not start: {''.join(lines)} {''.join(errors)[-2000:]}"
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        yield Server(url, proc, token, lines, errors)
    finally:
        if proc.poll() is None:
            rc = terminate(proc, 30, "serve")
            assert rc == 0, f"serve exited {rc} on SIGTERM: {''.join(errors)[-1500:]}"
