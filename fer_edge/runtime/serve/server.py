"""``serve(options, make_pipeline)``: one pipeline and worker thread per camera, the HTTP server on the event loop,
optional MQTT; runs until SIGINT or SIGTERM, then stops the cameras and closes every stream."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.notify import notifier
from fer_edge.runtime.outputs import frame_record
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.serve.app import ServeApp
from fer_edge.runtime.serve.camera import CameraWorker
from fer_edge.runtime.serve.hub import Hub
from fer_edge.runtime.serve.metrics import ServeCollector, make_registry
from fer_edge.runtime.serve.options import ServeOptions, check_token, redact, url_host
from fer_edge.runtime.sources import Frame
from fer_edge.runtime.types import FrameResult

log = logging.getLogger("fer_edge.serve")
WATCHDOG_CHECK_S = 1.0


def not_hung(worker: CameraWorker, stale_s: float) -> bool:
    """A camera that delivers, or is between attempts (its own retries handle it): anything but a camera that
    says it runs and has given no frame for ``stale_s`` (a read stuck for good, which a restart can cure)."""
    return worker.healthy(stale_s) or worker.state != "running"


async def _systemd(workers: list[CameraWorker], stale_s: float, done: asyncio.Event) -> None:
    """systemd ``Type=notify``: ping the watchdog while no camera is hung; STATUS says how many deliver."""
    notify, shown = notifier(), ""
    while not done.is_set():
        if all(not_hung(w, stale_s) for w in workers):
            notify.tick()
        status = f"{sum(w.healthy(stale_s) for w in workers)} of {len(workers)} camera(s) delivering frames"
        if status != shown:
            notify.status(status)
            shown = status
        try:
            await asyncio.wait_for(done.wait(), WATCHDOG_CHECK_S)
        except asyncio.TimeoutError:
            pass


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def serve(options: ServeOptions, make_pipeline: Callable[[], Pipeline], echo: Callable[[str], None] = print,
          ready: Callable[[str], None] | None = None) -> int:
    """Serve until interrupted; 0 on a clean stop. Bad settings or models fail before anything is bound."""
    token, generated = check_token(options.host, options.token)
    mqtt_config = None
    if options.mqtt:
        from fer_edge.runtime.serve.mqtt import MqttConfig

        mqtt_config = MqttConfig.parse(options.mqtt, **options.mqtt_options)
    pipelines = [make_pipeline() for _ in options.cameras]
    return asyncio.run(_main(options, token, generated, pipelines, mqtt_config, echo, ready))


async def _main(options: ServeOptions, token: str | None, generated: bool, pipelines: list[Pipeline],
                mqtt_config: Any, echo: Callable[[str], None], ready: Callable[[str], None] | None) -> int:
    loop = asyncio.get_running_loop()
    hub = Hub([c.id for c in options.cameras], options.timeline_s)
    stop = threading.Event()
    mqtt = None
    if mqtt_config is not None:
        from fer_edge.runtime.serve.mqtt import MqttPublisher

        mqtt = MqttPublisher(mqtt_config, [c.id for c in options.cameras])

    def on_result(worker: CameraWorker, frame: Frame, result: FrameResult | None,
                  changes: list[dict[str, Any]]) -> None:
        envelope = None if result is None else {"camera": worker.id, "ts": round(time.time(), 3),
                                                "result": frame_record(result, frame.name)}
        try:
            loop.call_soon_threadsafe(hub.publish, worker.id, envelope, None if envelope is None else _dumps(envelope),
                                      changes, [_dumps(c) for c in changes])
        except RuntimeError:  # the loop is closing
            pass
        if mqtt is not None:
            mqtt.on_result(worker.id, result, changes)

    workers = [CameraWorker(spec, pipe, options, on_result, stop)
               for spec, pipe in zip(options.cameras, pipelines, strict=True)]
    collector = ServeCollector(workers, hub, options.stale_s, mqtt.stats if mqtt is not None else None)
    app = ServeApp(options, token, workers, hub, make_registry(collector), pipelines[0].classes).make()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise FerEdgeError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None
    port = runner.addresses[0][1] if runner.addresses else options.port
    host = url_host(options.host)
    url = f"http://{host}:{port}/"
    echo(f"serving {len(workers)} camera(s) on {url} ({'token required' if token else 'no token'}; "
         f"stream {'on' if options.stream else 'off'}{', faces blurred' if options.redact else ''})")
    for w in workers:
        echo(f"  {w.id}: {w.source}")
    if generated:
        echo(f"token (shown once): {token}")
    if mqtt is not None:
        echo(f"mqtt: {redact(mqtt.config.describe())}")
        mqtt.start()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass
    for w in workers:
        w.start()
    notifier().ready(status=f"serving {len(workers)} camera(s) on {url}")  # no-op outside systemd
    watchdog = asyncio.create_task(_systemd(workers, options.stale_s, done)) if notifier().enabled else None
    if ready is not None:
        ready(url)
    try:
        await done.wait()
    finally:
        echo("stopping")
        notifier().stopping()
        if watchdog is not None:
            watchdog.cancel()
        stop.set()
        hub.close()
        await runner.cleanup()
        await loop.run_in_executor(None, lambda: [w.join(10.0) for w in workers])
        if mqtt is not None:
            await loop.run_in_executor(None, mqtt.close)
        for w in workers:
            echo(f"  {w.id}: {w.frames} frames, {w.faces_total} faces, {w.failures} failures, "
                 f"{w.reconnects} reconnects, {w.dropped} dropped")
    return 0
