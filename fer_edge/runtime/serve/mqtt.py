"""MQTT with paho-mqtt: per-track label changes and periodic per-camera summaries under a prefix, Home Assistant
discovery, TLS and username/password, reconnects with bounded backoff and a bounded offline queue.

Camera threads only append to a bounded queue (never wait on the network); a sender thread hands messages to paho
while connected and keeps them (oldest dropped first) while the broker is away."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from fer_edge import __version__
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.types import FrameResult

log = logging.getLogger("fer_edge.serve")
DISCOVERY_PREFIX = "homeassistant"


@dataclass(frozen=True)
class MqttConfig:
    """Where and how to publish. ``MqttConfig.parse("mqtts://user:pass@host:8883/prefix")``."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    interval: float = 10.0
    discovery: bool = True
    queue: int = 1000            # offline queue: messages kept while the broker is away
    keepalive: int = 30
    max_backoff: int = 30        # seconds between reconnect attempts, at most

    @classmethod
    def parse(cls, url: str, ca: str | None = None, interval: float = 10.0, discovery: bool = True,
              **kwargs: Any) -> MqttConfig:
        try:
            parts = urlsplit(url)
        except ValueError:  # urllib's "Invalid IPv6 URL"
            raise FerEdgeError("--mqtt: unbalanced [ ] in the broker address (an IPv6 broker is written "
                               "mqtt://[::1]:1883/prefix)") from None
        if parts.scheme not in ("mqtt", "mqtts"):
            raise FerEdgeError("--mqtt takes mqtt://[user:pass@]host[:port]/prefix (or mqtts:// for TLS)")
        if not parts.hostname:
            raise FerEdgeError("--mqtt: no broker host in the URL")
        try:
            given = parts.port
        except ValueError:  # not a number, or outside 0-65535
            given = 0
        if given == 0:
            raise FerEdgeError("--mqtt: the broker port must be a number from 1 to 65535 (e.g. mqtt://broker:1883/p)")
        port = given or (8883 if parts.scheme == "mqtts" else 1883)
        prefix = parts.path.strip("/") or "fer-edge"
        if parts.query or parts.fragment or "#" in url or not re.fullmatch(r"[\w./-]+", prefix):
            raise FerEdgeError(f"--mqtt: topic prefix {prefix!r} may hold letters, digits, _ - . / only")
        if ca is not None and parts.scheme != "mqtts":
            raise FerEdgeError("--mqtt-ca needs an mqtts:// broker URL")
        if ca is not None and not os.path.isfile(ca):
            raise FerEdgeError(f"--mqtt-ca {ca} not found")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if user and password is None:
            password = os.environ.get("FER_EDGE_MQTT_PASSWORD")
        return cls(parts.hostname, port, prefix, parts.scheme == "mqtts", user, password, ca, float(interval),
                   bool(discovery), **kwargs)

    def describe(self) -> str:
        """The broker URL without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"

    @property
    def node(self) -> str:
        """Home Assistant node id, from the prefix."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.prefix).strip("_") or "fer_edge"


class MqttPublisher:
    """``start()``, ``on_result(camera, result, changes)`` from camera threads, ``close()``."""

    def __init__(self, config: MqttConfig, cameras: list[str]) -> None:
        import paho.mqtt.client as mqtt

        self.config = config
        self.cameras = list(cameras)
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self._pending: deque[tuple[str, bytes, int, bool]] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._summary: dict[str, dict[str, Any]] = {c: {"frames": 0, "faces": 0, "tracks": {}, "ts": None}
                                                    for c in cameras}
        self._thread: threading.Thread | None = None
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"fer-edge-{config.node}-{secrets.token_hex(3)}", protocol=mqtt.MQTTv311)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set(ca_certs=config.ca)
        client.will_set(self.topic("status"), "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, config.max_backoff)
        client.max_inflight_messages_set(50)
        client.max_queued_messages_set(config.queue)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self._fails = 0
        self.client = client

    def topic(self, *parts: str) -> str:
        return "/".join((self.config.prefix, *parts))

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "published": self.published, "dropped": self.dropped,
                "reconnects": max(0, self.connects - 1)}

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._send_loop, name="fer-edge mqtt", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Publish 'offline', flush what can go within a second, disconnect."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(5)
        if self.connected:
            try:
                self.client.publish(self.topic("status"), "offline", qos=1, retain=True).wait_for_publish(1.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # --- from the camera threads -----------------------------------------------------------------------------
    def on_result(self, camera: str, result: FrameResult | None, changes: list[dict[str, Any]]) -> None:
        """Never blocks on the network: updates the summary and queues the changes (``result`` None: the
        source closed, its tracks ended)."""
        s = self._summary[camera]
        s["frames"] += result is not None
        s["faces"] = len(result.faces) if result is not None else 0
        s["tracks"] = {e.track: e.label for e in result.faces} if result is not None else {}
        s["ts"] = time.time()
        for ch in changes:
            self._queue(self.topic(camera, "change"), json.dumps(ch, separators=(",", ":")).encode(), 1, False)

    def _queue(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        with self._cond:
            if len(self._pending) >= self.config.queue:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append((topic, payload, qos, retain))
            self._cond.notify()

    # --- the sender thread ----------------------------------------------------------------------------------
    def summary(self, camera: str) -> dict[str, Any]:
        s = self._summary[camera]
        tracks = dict(s["tracks"])
        labels = Counter(tracks.values())
        return {"camera": camera, "ts": round(time.time(), 3), "frames": s["frames"], "faces": s["faces"],
                "labels": dict(labels), "dominant": labels.most_common(1)[0][0] if labels else None,
                "tracks": {str(k): v for k, v in tracks.items()}}

    def _send_loop(self) -> None:
        next_summary = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_summary:  # only the newest summary matters: never queued while offline
                if self.connected:
                    for cam in self.cameras:
                        self._publish(self.topic(cam, "summary"), json.dumps(self.summary(cam)).encode(), 0, True)
                next_summary = now + self.config.interval
            with self._cond:
                if not self.connected or not self._pending:
                    self._cond.wait(max(0.05, next_summary - time.monotonic()))
                    continue
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), 100))]
            for i, (topic, payload, qos, retain) in enumerate(batch):
                if not self._publish(topic, payload, qos, retain):
                    with self._cond:  # put back what did not go, in order (still bounded)
                        self._pending.extendleft(reversed(batch[i:]))
                        while len(self._pending) > self.config.queue:
                            self._pending.popleft()
                            self.dropped += 1
                    break

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        import paho.mqtt.client as mqtt

        try:
            rc = self.client.publish(topic, payload, qos=qos, retain=retain).rc
        except (ValueError, RuntimeError) as exc:
            log.warning("mqtt: cannot publish to %s: %s", topic, exc)
            self.dropped += 1
            return True
        if rc == mqtt.MQTT_ERR_SUCCESS:
            self.published += 1
            return True
        if rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            return True
        return False  # not connected: keep it for later

    # --- paho callbacks (its network thread) -----------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt: %s refused the connection: %s", self.config.describe(), reason)
            return
        self.connects += 1
        client.publish(self.topic("status"), "online", qos=1, retain=True)
        if self.config.discovery:
            for cam in self.cameras:
                for topic, cfg in discovery(self.config, cam):
                    client.publish(topic, json.dumps(cfg), qos=1, retain=True)
        log.info("mqtt: connected to %s", self.config.describe())
        self._fails = 0
        with self._cond:
            self.connected = True
            self._cond.notify()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._fails += 1
        if self._fails in (1, 10) or self._fails % 100 == 0:  # said once, then now and then
            log.warning("mqtt: cannot reach %s (attempt %d); retrying, the cameras go on", self.config.describe(),
                        self._fails)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            was, self.connected = self.connected, False
        if was and not self._stop.is_set():
            log.warning("mqtt: lost %s (%s); reconnecting", self.config.describe(), reason)


def discovery(config: MqttConfig, camera: str) -> list[tuple[str, dict[str, Any]]]:
    """Home Assistant MQTT discovery: per camera a device with a 'faces' and an 'expression' sensor, both read
    from the retained summary topic, available while the server's status topic says 'online'."""
    node, cam = config.node, re.sub(r"[^A-Za-z0-9_]", "_", camera)
    state = f"{config.prefix}/{camera}/summary"
    device = {"identifiers": [f"{node}_{cam}"], "name": f"fer-edge {camera}", "manufacturer": "fer-edge",
              "model": "fer-edge serve", "sw_version": __version__}
    common = {"state_topic": state, "availability_topic": f"{config.prefix}/status", "device": device}
    faces = {"name": "Faces", "unique_id": f"{node}_{cam}_faces", "value_template": "{{ value_json.faces }}",
             "unit_of_measurement": "faces", "state_class": "measurement", "icon": "mdi:face-recognition", **common}
    expr = {"name": "Expression", "unique_id": f"{node}_{cam}_expression",
            "value_template": "{{ value_json.dominant or 'none' }}", "icon": "mdi:emoticon-outline", **common}
    return [(f"{DISCOVERY_PREFIX}/sensor/{node}/{cam}_faces/config", faces),
            (f"{DISCOVERY_PREFIX}/sensor/{node}/{cam}_expression/config", expr)]
