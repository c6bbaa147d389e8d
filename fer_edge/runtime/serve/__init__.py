"""``fer-edge serve``: several cameras in one process, each with its own reader and pipeline thread, behind a small
HTTP server (dashboard, JSON, Server-Sent Events, MJPEG, Prometheus metrics, health) and optional MQTT events.

Modules, one per role: ``options`` (settings, bind and token checks), ``changes`` (per-track label changes),
``camera`` (the per-camera worker thread and its state), ``hub`` (fan-out to HTTP clients), ``metrics``
(Prometheus collector), ``app`` (aiohttp routes), ``mqtt`` (paho-mqtt publisher), ``server`` (wiring), ``cli``.
Needs the ``serve`` extra (aiohttp, prometheus-client, paho-mqtt); never imports TensorFlow.
"""

from __future__ import annotations

from typing import Any


def serve(*args: Any, **kwargs: Any) -> int:
    """Run the server until SIGINT/SIGTERM (see ``fer_edge.runtime.serve.server.serve``)."""
    from fer_edge.runtime.serve.server import serve as _serve

    return _serve(*args, **kwargs)
