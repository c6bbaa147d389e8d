"""`fer-edge serve` against a real server on 127.0.0.1 with the sample clip as its camera: the JSON API and the
event stream validated against the schemas, tokens, a refused non-local bind, MJPEG, metrics, two cameras where
one fails (and whose credentials never show), and the units behind them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import cv2
import jsonschema
import numpy as np
import pytest
from helpers.serve import ENV, REPO, SAMPLE, Server, need_serve_extra, serve

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.outputs import FRAME_SCHEMA
from fer_edge.runtime.serve.changes import CHANGE_SCHEMA, LabelChanges
from fer_edge.runtime.serve.options import bind_address, check_token, is_loopback, parse_cameras, redact
from fer_edge.runtime.types import Expression, Face, FrameResult

TOKEN = "test-token-0123456789"
ENVELOPE = {"type": "object", "required": ["camera", "ts", "result"], "additionalProperties": False,
            "properties": {"camera": {"type": "string"}, "ts": {"type": "number"}, "result": FRAME_SCHEMA}}


@pytest.fixture(scope="module")
def live() -> Server:
    need_serve_extra()
    with serve("--source", f"lobby={SAMPLE}", "--stream", "--stale", "5", token=TOKEN) as srv:
        srv.wait_for(lambda: srv.get("/healthz", None)[0] == 200, "the first frames")
        yield srv


def _faces_seen(srv: Server) -> dict | None:
    cam = srv.json("/api/faces")["cameras"][0]
    return cam if cam["result"] and cam["result"]["faces"] else None


def test_api_faces_is_the_run_schema_with_labels(live: Server) -> None:
    cam = live.wait_for(lambda: _faces_seen(live), "a frame with faces")
    assert cam["camera"] == "lobby" and cam["ok"] and cam["state"] == "running"
    jsonschema.validate(cam["result"], FRAME_SCHEMA)
    classes = live.json("/api/config")["classes"]
    for face in cam["result"]["faces"]:
        assert face["label"] in classes and 0 <= face["confidence"] <= 1
        assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)


def test_events_one_line_per_result_and_per_change(live: Server) -> None:
    events = live.events(count=6)
    for ev in events:
        jsonschema.validate(ev, ENVELOPE)
    frames = [ev["result"]["frame"] for ev in events]
    assert len(set(frames)) == len(frames), frames  # one line per result, no repeats
    changes = live.events("changes=1", count=3, timeout=90)
    for ch in changes:
        jsonschema.validate(ch, CHANGE_SCHEMA)
        assert ch["camera"] == "lobby" and ch["label"] != ch["previous"]
    timeline = live.json("/api/timeline?seconds=600")["changes"]
    assert timeline and all(jsonschema.validate(c, CHANGE_SCHEMA) is None for c in timeline)


def test_every_endpoint_but_healthz_needs_the_token(live: Server) -> None:
    for path in ("/", "/api/faces", "/api/config", "/api/timeline", "/metrics", "/events",
                 "/snapshot/lobby.jpg", "/stream/lobby.mjpg"):
        status, body, headers = live.get(path, token=None)
        assert status == 401, (path, status)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert live.get(path, token="wrong-token-xxxxxxxx")[0] == 401, path
    assert live.get("/api/faces")[0] == 200
    assert live.get(f"/api/faces?token={TOKEN}", token=None)[0] == 200
    status, body, headers = live.get(f"/?token={TOKEN}", token=None)
    assert status == 200 and b"EventSource" in body and b"canvas" in body
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert b"http://" not in body and b"https://" not in body  # nothing loaded from outside
    assert live.get("/healthz", token=None)[0] == 200


def test_a_token_that_is_not_utf8_is_refused_not_an_error(live: Server) -> None:
    """Authorization: Bearer \\xff\\xfe (raw bytes, as curl sends them): 401, no traceback."""
    url = urlparse(live.url)
    for header in (b"Authorization: Bearer \xff\xfe", b"Authorization: \xff\xfe"):
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(b"GET /api/faces HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert not any("Traceback" in ln or "Error handling request" in ln for ln in live.errors), live.errors[-5:]
    assert live.get("/api/faces")[0] == 200  # and the server goes on


def test_metrics_are_prometheus_text_per_camera(live: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, body, headers = live.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert all(name.startswith("fer_edge_") for name, _ in samples)
    cam = (("camera", "lobby"),)
    assert samples[("fer_edge_frames_total", cam)] > 0 and samples[("fer_edge_camera_up", cam)] == 1
    assert samples[("fer_edge_fps", cam)] > 0
    stages = {dict(lb)["stage"] for name, lb in samples if name == "fer_edge_stage_milliseconds"}
    assert {"decode", "detect", "classify"} <= stages
    for name in ("fer_edge_dropped_frames_total", "fer_edge_reconnects_total", "fer_edge_faces"):
        assert (name, cam) in samples, name


def _mjpeg_frames(srv: Server, count: int) -> list[np.ndarray]:
    import urllib.request

    req = urllib.request.Request(f"{srv.url}stream/lobby.mjpg", headers={"Authorization": f"Bearer {TOKEN}"})
    frames: list[np.ndarray] = []
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(frames) < count:
            line = r.readline()
            if line.lower().startswith(b"content-length:"):
                r.readline()
                data = r.read(int(line.split(b":")[1]))
                frames.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    return frames


def test_mjpeg_stream_sends_new_frames_and_a_stalled_viewer_holds_nothing_back(live: Server) -> None:
    frames = _mjpeg_frames(live, 5)  # the sample's scenes last at most 3 frames: 5 frames hold two scenes
    assert all(f is not None and f.shape == (480, 640, 3) for f in frames)
    assert any(np.abs(frames[0].astype(int) - f).mean() > 0.5 for f in frames[1:])  # the view moves
    host, port = urlparse(live.url).hostname, urlparse(live.url).port
    stalled = []
    for _ in range(3):  # viewers that connect and never read
        s = socket.create_connection((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /stream/lobby.mjpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        stalled.append(s)
    try:
        start = live.json("/api/faces")["cameras"][0]["frames"]
        live.wait_for(lambda: live.json("/api/faces")["cameras"][0]["frames"] >= start + 20,
                      "20 more frames with stalled viewers")
        assert live.get("/healthz", None)[0] == 200
    finally:
        for s in stalled:
            s.close()


def test_token_auto_is_generated_and_printed_once() -> None:
    need_serve_extra()
    with serve("--source", str(SAMPLE), "--token", "auto", "--no-pace") as srv:
        srv.wait_for(lambda: any("token (shown once):" in ln for ln in srv.lines), "the token line")
        token = next(ln for ln in srv.lines if "token (shown once):" in ln).split(":", 1)[1].strip()
        assert len(token) >= 16
        assert srv.get("/api/config", token=None)[0] == 401
        assert srv.get("/api/config", token=token)[0] == 200
    assert sum(token in ln for ln in srv.lines) == 1  # once, and never in the logs
    assert not any(token in ln for ln in srv.errors)


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "--token"),
    (["--host", "192.168.1.10"], "--token"),
    (["--token", "short"], "at least 8"),
    (["--token", "secret-token-1 "], "whitespace"),
    (["--host", "[::1"], "brackets hold an IPv6 address"),
    (["--redact"], "--stream"),
])
def test_refused_settings_are_one_line(args: list[str], message: str) -> None:
    need_serve_extra()
    out = subprocess.run([sys.executable, "-m", "fer_edge.cli", "serve", "--source", str(SAMPLE), *args],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env=ENV)
    assert out.returncode == 2, out
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("command", ["run", "serve"])
def test_size_is_parsed_once_for_run_and_serve(command: str) -> None:
    """One --size parser: WxH with both sides at least 1, for --camera only; run and serve share the options."""
    from click.testing import CliRunner

    from fer_edge.cli import cli
    from fer_edge.runtime.cli import run
    from fer_edge.runtime.serve.cli import serve as serve_cmd

    cmd = run if command == "run" else serve_cmd
    cam = ["--camera", "0"] if command == "run" else ["--camera", "0", "--camera", "1"]
    assert cmd.make_context(command, [*cam, "--size", "640X480"]).params["size"] == (640, 480)
    for bad in ("0x0", "640x0", "640", "axb", "-1x480", "640x480x3"):
        res = CliRunner().invoke(cli, [command, *cam, "--size", bad])
        assert res.exit_code == 2 and "WIDTHxHEIGHT with both at least 1" in res.output, (bad, res.output)
    res = CliRunner().invoke(cli, [command, "--source", str(SAMPLE), "--size", "640x480"])
    assert res.exit_code == 2 and "--size applies to --camera only" in res.output, res.output
    params = {p.name: p for p in cmd.params}
    others = {p.name: p for p in (serve_cmd if command == "run" else run).params}
    for name in ("bundle", "backend", "threads", "overlap", "flip_tta", "size", "precision", "detector"):
        assert params[name] is others[name] or params[name].default == others[name].default, name
    assert params["backend"].default == "auto"


def test_two_cameras_one_failing_and_its_password_never_shown() -> None:
    need_serve_extra()
    with socket.socket() as s:  # a port where nothing listens: the RTSP camera is refused at once
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    secret = "hunter2secret"
    with serve("--source", str(SAMPLE), "--source", f"door=rtsp://admin:{secret}@127.0.0.1:{dead}/live",
               "--stale", "5") as srv:
        srv.wait_for(lambda: srv.json("/api/faces")["cameras"][0]["frames"] > 3, "frames from the good camera")
        status, body, _ = srv.get("/healthz")
        health = json.loads(body)
        assert status == 503 and not health["ok"]
        assert health["cameras"]["cam0"] == "running" and health["cameras"]["door"].startswith("down")
        def door_failed_twice() -> dict | None:
            return next((c for c in srv.json("/api/faces")["cameras"] if c["camera"] == "door" and c["failures"] >= 2),
                        None)

        door = srv.wait_for(door_failed_twice, "two failed opens")
        assert door["state"] == "retrying" and door["error"] and not door["ok"]
        before = srv.json("/api/faces")["cameras"][0]["frames"]
        srv.wait_for(lambda: srv.json("/api/faces")["cameras"][0]["frames"] > before + 5, "the good camera going on")
        # no image leaves without --stream
        assert srv.get("/stream/cam0.mjpg")[0] == 404 and srv.get("/snapshot/cam0.jpg")[0] == 404
        texts = [srv.get(p)[1].decode() for p in ("/", "/api/faces", "/api/config", "/metrics", "/healthz")]
        assert "rtsp://***@127.0.0.1" in texts[1]
    logs = "".join(srv.lines + srv.errors)
    assert "door" in logs
    for text in [*texts, logs]:
        assert secret not in text and "admin:" not in text


def _result(*faces: tuple[int, str]) -> FrameResult:
    return FrameResult(0, 0.0, tuple(Expression(Face((0, 0, 10, 10), 1.0), t, lb, 0.9, {lb: 0.9})
                                     for t, lb in faces))


def test_label_changes_appear_change_and_go() -> None:
    ch = LabelChanges("c")
    first = ch.update(_result((1, "neutral"), (2, "happiness")), 1.0)
    assert [(c["track"], c["previous"], c["label"]) for c in first] == [(1, None, "neutral"), (2, None, "happiness")]
    assert ch.update(_result((1, "neutral"), (2, "happiness")), 2.0) == []
    later = ch.update(_result((1, "anger")), 3.0)
    assert [(c["track"], c["previous"], c["label"]) for c in later] == [(1, "neutral", "anger"), (2, "happiness", None)]
    for c in first + later:
        jsonschema.validate(c, CHANGE_SCHEMA)


def test_cameras_tokens_and_redaction_units() -> None:
    cams = parse_cameras((0,), ("hall=rtsp://u:p@h/s", str(SAMPLE), "rtsp://h/s?x=1"))
    assert [c.id for c in cams] == ["cam0", "hall", "cam2", "cam3"]
    assert cams[0].kind == "camera" and cams[1].spec == "rtsp://u:p@h/s" and cams[1].shown == "rtsp://***@h/s"
    with pytest.raises(FerEdgeError, match="twice"):
        parse_cameras((), ("a=x.mp4", "a=y.mp4"))
    with pytest.raises(FerEdgeError, match="at least one"):
        parse_cameras((), ())
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.2")
    assert check_token("127.0.0.1", None) == (None, False)
    token, generated = check_token("0.0.0.0", "auto")
    assert generated and len(token) >= 16
    with pytest.raises(FerEdgeError, match="--token"):
        check_token("0.0.0.0", None)
    for spaced in (" token-12345", "token-12345 ", "token-12345\t"):  # a stripped header could never match
        with pytest.raises(FerEdgeError, match="whitespace"):
            check_token("127.0.0.1", spaced)
    assert bind_address("[::1]") == "::1" and bind_address("::1") == "::1" and bind_address("0.0.0.0") == "0.0.0.0"
    for bad in ("[::1", "::1]", "[localhost]", "[]", "["):
        with pytest.raises(FerEdgeError, match="brackets hold an IPv6 address"):
            bind_address(bad)
    assert redact("error: rtsp://a:b@x/y failed, http://c:d@z/") == "error: rtsp://***@x/y failed, http://***@z/"


def test_redacted_view_blurs_the_faces() -> None:
    from fer_edge.runtime.serve.camera import CameraWorker
    from fer_edge.runtime.serve.options import CameraSpec, ServeOptions
    from fer_edge.runtime.sources import Frame

    cap = cv2.VideoCapture(str(SAMPLE))
    ok, image = cap.read()
    cap.release()
    assert ok
    box = (218, 293, 146, 146)
    result = FrameResult(0, 0.0, (Expression(Face(box, 1.0), 1, "neutral", 0.9, {"neutral": 0.9}),))
    worker = CameraWorker(CameraSpec("c", str(SAMPLE)), None, ServeOptions([]), lambda *a: None, None)  # type: ignore[arg-type]
    worker._latest = (0, Frame(0, 0.0, image), result)
    decode = lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR).astype(np.float32)  # noqa: E731
    plain = decode(worker.jpeg(0.0, 95)[1])
    worker._jpeg = None
    blurred = decode(worker.jpeg(0.0, 95, redact_faces=True)[1])
    x, y, w, h = box
    inner = (slice(y + 20, y + h - 20), slice(x + 20, x + w - 20))
    detail = lambda img: cv2.Laplacian(img[inner], cv2.CV_32F).var()  # noqa: E731
    assert detail(blurred) < 0.1 * detail(plain)
    assert np.abs(plain[:100, 400:] - blurred[:100, 400:]).mean() < 2  # away from the face: the same picture


def test_serve_never_imports_tensorflow() -> None:
    code = """
import sys
import fer_edge.runtime.serve.server, fer_edge.runtime.serve.app, fer_edge.runtime.serve.mqtt
from fer_edge.cli import cli
cli.get_command(None, "serve")
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax"))
print("HEAVY", bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, env=ENV)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "HEAVY []" in out.stdout


def test_systemd_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    """Under a Type=notify unit with WatchdogSec: READY once serving, watchdog pings, STOPPING on SIGTERM."""
    need_serve_extra()
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(60)
    got: list[str] = []
    try:
        with serve("--source", str(SAMPLE), env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}) as srv:
            while sum(m == "WATCHDOG=1" for m in got) < 2:
                got.append(sock.recv(4096).decode())
            assert srv.get("/healthz", None)[0] == 200
        sock.settimeout(5)
        while "STOPPING=1" not in got:
            got.append(sock.recv(4096).decode())
    finally:
        sock.close()
    assert got[0].startswith("READY=1\nSTATUS=serving 1 camera(s) on http://127.0.0.1:")
    assert any(m.startswith("STATUS=1 of 1 camera(s) delivering") for m in got)


def test_a_hung_camera_stops_the_watchdog_pings_a_retrying_one_does_not() -> None:
    from fer_edge.runtime.serve.camera import CameraWorker
    from fer_edge.runtime.serve.options import CameraSpec, ServeOptions
    from fer_edge.runtime.serve.server import not_hung

    w = CameraWorker(CameraSpec("c", "x.mp4"), None, ServeOptions([]), lambda *a: None, None)  # type: ignore[arg-type]
    w.state = "retrying"
    assert not_hung(w, 5.0) and not w.healthy(5.0)
    w.state, w.last_frame_t = "running", time.monotonic()
    assert not_hung(w, 5.0) and w.healthy(5.0)
    w.last_frame_t = time.monotonic() - 60  # "running", no frame for a minute: a read stuck for good
    assert not not_hung(w, 5.0)


def test_worker_reports_results_then_the_tracks_ending_with_the_source(tmp_path: Path) -> None:
    import threading

    from fer_edge.runtime.pipeline import Pipeline
    from fer_edge.runtime.serve.camera import CameraWorker
    from fer_edge.runtime.serve.options import CameraSpec, ServeOptions

    clip = tmp_path / "six.avi"
    cap, out = cv2.VideoCapture(str(SAMPLE)), None
    for _ in range(6):
        ok, img = cap.read()
        assert ok
        if out is None:
            out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 6.0, img.shape[1::-1])
        out.write(img)
    out.release()
    cap.release()
    calls: list[tuple[FrameResult | None, list[dict]]] = []
    opts = ServeOptions([], pace=False, loop=False)
    worker = CameraWorker(CameraSpec("c", str(clip)), Pipeline.from_bundle(smooth=0.5), opts,
                          lambda w, frame, result, changes: calls.append((result, changes)), threading.Event())
    worker.run()  # returns when the clip ends (no loop)
    assert worker.state == "ended" and worker.frames == 6 and worker.failures == 0
    results = [r for r, _ in calls if r is not None]
    assert [r.index for r in results] == list(range(6)) and any(r.faces for r in results)
    last_result, gone = calls[-1]
    assert last_result is None and gone and all(c["label"] is None and c["previous"] for c in gone)
    assert {c["track"] for c in gone} == {e.track for e in results[-1].faces}
    for _, changes in calls:
        for c in changes:
            jsonschema.validate(c, CHANGE_SCHEMA)
