"""Prometheus metrics (names prefixed ``fer_edge_``), read from the camera workers at each scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fer_edge.runtime.serve.camera import CameraWorker
from fer_edge.runtime.serve.hub import Hub


class ServeCollector:
    """A custom collector: every value comes from the workers' own counters, so nothing is updated per frame."""

    def __init__(self, workers: list[CameraWorker], hub: Hub, stale_s: float,
                 mqtt: Callable[[], dict[str, Any]] | None = None) -> None:
        self.workers = workers
        self.hub = hub
        self.stale_s = stale_s
        self.mqtt = mqtt

    def collect(self) -> Iterator[Metric]:
        cam = ["camera"]
        up = GaugeMetricFamily("fer_edge_camera_up", "1 while the camera delivers frames", labels=cam)
        info = GaugeMetricFamily("fer_edge_camera_info", "Camera source (credentials removed) and state",
                                 labels=["camera", "source", "state"])
        fps = GaugeMetricFamily("fer_edge_fps", "Frames per second processed (running mean)", labels=cam)
        frames = CounterMetricFamily("fer_edge_frames", "Frames processed", labels=cam)
        faces = GaugeMetricFamily("fer_edge_faces", "Faces in the newest frame", labels=cam)
        faces_seen = CounterMetricFamily("fer_edge_faces_seen", "Faces classified, summed over frames", labels=cam)
        stage = GaugeMetricFamily("fer_edge_stage_milliseconds", "Milliseconds per frame by stage (running mean)",
                                  labels=["camera", "stage"])
        dropped = CounterMetricFamily("fer_edge_dropped_frames", "Live frames dropped for a newer one", labels=cam)
        reconnects = CounterMetricFamily("fer_edge_reconnects", "Source reconnects and reopenings after a failure",
                                         labels=cam)
        failures = CounterMetricFamily("fer_edge_camera_failures", "Opens or runs of the camera that failed",
                                       labels=cam)
        for w in self.workers:
            c = [w.id]
            up.add_metric(c, 1.0 if w.healthy(self.stale_s) else 0.0)
            info.add_metric([w.id, w.source, w.state], 1.0)
            fps.add_metric(c, w.fps if w.healthy(self.stale_s) else 0.0)
            frames.add_metric(c, w.frames)
            faces.add_metric(c, w.faces_now)
            faces_seen.add_metric(c, w.faces_total)
            for name, ms in list(w.stages_ms.items()):
                stage.add_metric([w.id, name], ms)
            if w.encode_ms:
                stage.add_metric([w.id, "encode"], w.encode_ms)
            dropped.add_metric(c, w.dropped)
            reconnects.add_metric(c, w.reconnects)
            failures.add_metric(c, w.failures)
        yield from (up, info, fps, frames, faces, faces_seen, stage, dropped, reconnects, failures)
        viewers = GaugeMetricFamily("fer_edge_viewers", "Connected viewers by kind", labels=["kind"])
        for kind, n in self.hub.viewers.items():
            viewers.add_metric([kind], n)
        yield viewers
        ev = sum(s.dropped for s in list(self.hub.subscribers)) + self.hub.events_dropped
        yield CounterMetricFamily("fer_edge_events_dropped", "Event lines dropped for clients that fell behind",
                                  value=ev)
        if self.mqtt is not None:
            m = self.mqtt()
            yield GaugeMetricFamily("fer_edge_mqtt_connected", "1 while connected to the MQTT broker",
                                    value=1.0 if m["connected"] else 0.0)
            yield CounterMetricFamily("fer_edge_mqtt_published", "MQTT messages handed to the broker",
                                      value=m["published"])
            yield CounterMetricFamily("fer_edge_mqtt_dropped", "MQTT messages dropped (offline queue full)",
                                      value=m["dropped"])
            yield CounterMetricFamily("fer_edge_mqtt_reconnects", "Reconnections to the MQTT broker",
                                      value=m["reconnects"])


def make_registry(collector: ServeCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
