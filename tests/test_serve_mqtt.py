"""`fer-edge serve --mqtt` against a real Mosquitto broker (Debian's `mosquitto`, started here on 127.0.0.1 with a
password file): Home Assistant discovery, label changes and summaries arrive; the broker is stopped and started
again mid-run while the pipeline keeps going, and the changes from while it was away are delivered after; the
password never appears in payloads or logs. Skipped, with the reason, where mosquitto is not installed."""

from __future__ import annotations

import contextlib
import getpass
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers.serve import SAMPLE, Server, need_serve_extra, serve

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.serve.changes import CHANGE_SCHEMA

USER, PASSWORD = "feredge", "broker-secret-pw"


@pytest.fixture(scope="module")
def mosquitto() -> str:
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).is_file()), None)
    if found is None:
        pytest.skip("no mosquitto broker installed (apt-get install -y mosquitto)")
    pytest.importorskip("paho.mqtt", reason="paho-mqtt missing: pip install -e '.[serve]'")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A Mosquitto on 127.0.0.1:port that needs USER/PASSWORD; ``stop()`` and ``start()`` again on the same port
    (sessions saved to disk in between)."""

    def __init__(self, binary: str, tmp: Path, tls: dict[str, Path] | None = None) -> None:
        self.binary, self.port = binary, _free_port()
        self.tls_port = _free_port() if tls else None
        pw = tmp / "passwd"
        pw.write_text(f"{USER}:{PASSWORD}\n")
        pw.chmod(0o600)
        subprocess.run([str(Path(binary).with_name("mosquitto_passwd")) if Path(binary).with_name(
            "mosquitto_passwd").exists() else "mosquitto_passwd", "-U", str(pw)], check=True, timeout=30)
        self.conf = tmp / "mosquitto.conf"
        # as root, mosquitto would switch to its own user, who cannot read this test's temporary folder
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
                             f"persistence true\npersistence_location {tmp}/\nuser {getpass.getuser()}\n")
        if tls:
            with self.conf.open("a") as fh:
                fh.write(f"listener {self.tls_port} 127.0.0.1\ncafile {tls['ca']}\ncertfile {tls['cert']}\n"
                         f"keyfile {tls['key']}\n")
        self.log = tmp / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=self.log.open("a"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            assert self.proc.poll() is None, self.log.read_text()[-1000:]
            time.sleep(0.1)
        raise AssertionError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Subscriber:
    """A paho client collecting every message under '#', with a persistent session (the broker keeps what arrives
    for it while it reconnects, across the broker's restart)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fer-edge-test-sub",
                                  clean_session=False)
        self.client.username_pw_set(USER, PASSWORD)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((time.time(), msg.topic, msg.payload, bool(msg.retain)))

    def topics(self, suffix: str, since: float = 0.0) -> list[tuple[float, str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[1].endswith(suffix) and m[0] >= since]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def broker_and_subscriber(binary: str, tmp: Path, tls: dict[str, Path] | None = None
                          ) -> Iterator[tuple[Broker, Subscriber]]:
    broker = Broker(binary, tmp, tls)
    broker.start()
    sub = Subscriber(broker.port)
    try:
        yield broker, sub
    finally:
        sub.close()
        broker.stop()


def _metric(srv: Server, name: str) -> float:
    for line in srv.get("/metrics")[1].decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_discovery_events_and_a_broker_restart_mid_run(mosquitto: str, tmp_path: Path) -> None:
    need_serve_extra()
    with broker_and_subscriber(mosquitto, tmp_path) as (broker, sub), \
            serve("--source", f"lobby={SAMPLE}", "--mqtt", f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{broker.port}/fe/test",
                  "--mqtt-interval", "1", "-v") as srv:
        # summaries go out every second from the start, so the first ones may predate the first frame
        srv.wait_for(lambda: sub.topics("/lobby/change") and any(
            json.loads(p)["frames"] > 0 for _, _, p, _ in sub.topics("/lobby/summary")), "changes and summaries")
        disc = {t: json.loads(p) for _, t, p, _ in sub.topics("/config")}
        assert set(disc) == {"homeassistant/sensor/fe_test/lobby_faces/config",
                             "homeassistant/sensor/fe_test/lobby_expression/config"}
        for cfg in disc.values():
            assert cfg["state_topic"] == "fe/test/lobby/summary" and cfg["availability_topic"] == "fe/test/status"
            assert cfg["unique_id"].startswith("fe_test_lobby_") and cfg["device"]["identifiers"] == ["fe_test_lobby"]
        assert [p for _, _, p, _ in sub.topics("fe/test/status")][-1] == b"online"
        for _, _, payload, _ in sub.topics("/lobby/change"):
            jsonschema.validate(json.loads(payload), CHANGE_SCHEMA)
        summaries = [json.loads(p) for _, _, p, _ in sub.topics("/lobby/summary")]
        assert [s["frames"] for s in summaries] == sorted(s["frames"] for s in summaries)  # counts never go back
        summary = summaries[-1]
        assert summary["camera"] == "lobby" and summary["frames"] > 0 and isinstance(summary["labels"], dict)

        broker.stop()  # the broker goes away mid-run
        down_at = time.time()
        srv.wait_for(lambda: _metric(srv, "fer_edge_mqtt_connected") == 0, "the publisher noticing")
        frames = srv.json("/api/faces")["cameras"][0]["frames"]
        srv.wait_for(lambda: srv.json("/api/faces")["cameras"][0]["frames"] > frames + 40,
                     "the pipeline going on without a broker")
        assert srv.get("/healthz", None)[0] == 200
        broker.start()
        up_at = time.time()
        srv.wait_for(lambda: _metric(srv, "fer_edge_mqtt_reconnects_total") >= 1, "the reconnect", timeout=90)
        srv.wait_for(lambda: sub.topics("/lobby/summary", since=up_at), "summaries after the restart", timeout=60)
        # the changes queued while the broker was away (made between its stop and its start) arrive once it is back
        srv.wait_for(lambda: [c for c in (json.loads(p) for _, _, p, _ in sub.topics("/lobby/change", since=down_at))
                              if down_at + 0.5 < c["ts"] < up_at], "changes from the offline time", timeout=60)
        assert _metric(srv, "fer_edge_mqtt_dropped_total") == 0
    logs = "".join(srv.lines + srv.errors)
    assert f"mqtt://{USER}@127.0.0.1:{broker.port}/fe/test" in logs and PASSWORD not in logs
    with sub.lock:
        assert not any(PASSWORD.encode() in p for _, _, p, _ in sub.messages)
    assert [p for _, _, p, _ in sub.topics("fe/test/status")][-1] == b"offline"  # said so on the way out


def test_mqtt_urls_are_checked_in_one_line() -> None:
    pytest.importorskip("paho.mqtt")
    from fer_edge.runtime.serve.mqtt import MqttConfig

    cfg = MqttConfig.parse("mqtts://me:p%40ss@broker.local/home/fer")
    assert (cfg.host, cfg.port, cfg.tls, cfg.username, cfg.password, cfg.prefix) == (
        "broker.local", 8883, True, "me", "p@ss", "home/fer")
    assert cfg.describe() == "mqtts://me@broker.local:8883/home/fer" and cfg.node == "home_fer"
    assert MqttConfig.parse("mqtt://h").prefix == "fer-edge"
    assert (MqttConfig.parse("mqtt://[::1]:1884/p").host, MqttConfig.parse("mqtt://[::1]:1884/p").port) == ("::1", 1884)
    for url, message in [("http://h/x", "mqtt://"), ("mqtt:///x", "host"), ("mqtt://h/a/#", "prefix"),
                         ("mqtt://h:99999/x", "port must be a number from 1 to 65535"),
                         ("mqtt://h:abc/x", "port must be a number from 1 to 65535"),
                         ("mqtt://h:0/x", "port must be a number from 1 to 65535"),
                         ("mqtt://[::1/x", r"unbalanced \[ \]")]:
        with pytest.raises(FerEdgeError, match=message):
            MqttConfig.parse(url)
    for url, message in [("mqtt://[::1/x", "unbalanced [ ]"), ("mqtt://h:99999/x", "from 1 to 65535")]:
        res = subprocess.run([sys.executable, "-m", "fer_edge.cli", "serve", "--source", str(SAMPLE), "--mqtt", url],
                             capture_output=True, text=True, timeout=120, check=False)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --mqtt: "), res.stderr
        assert message in res.stderr and "ValueError" not in res.stderr, res.stderr
    with pytest.raises(FerEdgeError, match="mqtts"):
        MqttConfig.parse("mqtt://h/x", ca="/etc/hostname")


def _certificates(tmp: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary to make the test certificates")
    ca, ca_key, key, csr, cert = (tmp / n for n in ("ca.pem", "ca.key", "server.key", "server.csr", "server.pem"))
    ext = tmp / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
                 "-subj", "/CN=fer-edge test CA"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days",
                 "2", "-extfile", ext]):
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True, timeout=60)
    return {"ca": ca, "cert": cert, "key": key}


def test_tls_broker_with_its_ca_and_refused_without(mosquitto: str, tmp_path: Path) -> None:
    need_serve_extra()
    tls = _certificates(tmp_path)
    with broker_and_subscriber(mosquitto, tmp_path, tls) as (broker, sub):
        url = f"mqtts://{USER}:{PASSWORD}@127.0.0.1:{broker.tls_port}"
        with serve("--source", f"lobby={SAMPLE}", "--mqtt", f"{url}/fe/tls", "--mqtt-ca", str(tls["ca"]),
                   "--mqtt-interval", "1") as srv:
            srv.wait_for(lambda: sub.topics("fe/tls/lobby/change") and sub.topics("fe/tls/lobby/summary"),
                         "changes and summaries over TLS")
            assert sub.topics("homeassistant/sensor/fe_tls/lobby_faces/config")
            assert _metric(srv, "fer_edge_mqtt_connected") == 1
        # the system CAs do not know this broker's certificate: no connection, and the pipeline does not care
        with serve("--source", f"lobby={SAMPLE}", "--mqtt", f"{url}/fe/untrusted", "--mqtt-interval", "1") as srv:
            srv.wait_for(lambda: srv.json("/api/faces")["cameras"][0]["frames"] > 30, "frames without the broker")
            assert _metric(srv, "fer_edge_mqtt_connected") == 0 and srv.get("/healthz", None)[0] == 200
        with sub.lock:
            assert not any(t.startswith("fe/untrusted/") for _, t, _, _ in sub.messages)
