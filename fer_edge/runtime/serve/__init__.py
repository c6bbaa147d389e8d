"""``fer-edge serve``: several cameras in one process, each with its own reader and pipeline thread, behind a small
HTTP server (dashboard, JSON, Server-Sent Events, MJPEG, Prometheus metrics, health) and optional MQTT events.

Modules, one per role: ``options`` (settings, bind and token checks), ``changes`` (per-track label changes),
``camera`` (the per-camera worker thread and its state), ``hub`` (fan-out to HTTP clients), ``metrics``
(Prometheus collector), ``app`` (aiohttp routes), ``mqtt`` (paho-mqtt publisher), ``server`` (wiring), ``cli``.
Needs the ``serve`` extra (aiohttp, prometheus-client, paho-mqtt); never imports TensorFlow.
"""
