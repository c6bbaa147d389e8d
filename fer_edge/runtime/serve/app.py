"""The aiohttp application: dashboard, JSON API, Server-Sent Events, MJPEG, metrics, health; token checked on
everything but ``/healthz``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from fer_edge import __version__
from fer_edge.runtime.serve.camera import CameraWorker
from fer_edge.runtime.serve.hub import Hub
from fer_edge.runtime.serve.metrics import render
from fer_edge.runtime.serve.options import ServeOptions

KEEPALIVE_S = 15.0
EVENTS_BATCH_S = 0.1  # an event-stream client is written to at most 10 times a second (all lines since, in order)
NO_CACHE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
OPEN = frozenset({"/healthz"})


def dashboard_html() -> tuple[str, str]:
    """The page and its Content-Security-Policy: its one inline script allowed by hash, nothing from outside."""
    html = resources.files("fer_edge.runtime.serve").joinpath("static/dashboard.html").read_text("utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in scripts)
    csp = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src 'self'; "
           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


class ServeApp:
    """Routes over the workers and the hub. ``make()`` returns the aiohttp Application."""

    def __init__(self, options: ServeOptions, token: str | None, workers: list[CameraWorker], hub: Hub,
                 registry: CollectorRegistry, classes: tuple[str, ...]) -> None:
        self.options = options
        self.token = token
        self.workers = {w.id: w for w in workers}
        self.hub = hub
        self.registry = registry
        self.classes = classes
        self.encoder = ThreadPoolExecutor(2, thread_name_prefix="fer-edge jpeg")
        self.html, self.csp = dashboard_html()

    def make(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/api/config", self.config)
        r.add_get("/api/faces", self.faces)
        r.add_get("/api/timeline", self.timeline)
        r.add_get("/events", self.events)
        r.add_get("/stream/{camera}.mjpg", self.mjpeg)
        r.add_get("/snapshot/{camera}.jpg", self.snapshot)
        r.add_get("/metrics", self.metrics)
        r.add_get("/healthz", self.healthz)
        app.on_shutdown.append(self._on_shutdown)
        return app

    # --- security --------------------------------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token is not None and request.path not in OPEN and not self._authorized(request):
            return web.json_response({"error": "unauthorized: send Authorization: Bearer TOKEN (or ?token=TOKEN)"},
                                     status=401, headers={"WWW-Authenticate": 'Bearer realm="fer-edge"', **NO_CACHE})
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else request.query.get("token", "")
        try:  # a header of bytes that are not UTF-8 arrives as surrogates: not the token, never an error
            given_bytes = given.encode()
        except UnicodeError:
            return False
        return bool(given) and hmac.compare_digest(given_bytes, str(self.token).encode())

    def _worker(self, request: web.Request) -> CameraWorker:
        worker = self.workers.get(request.match_info["camera"])
        if worker is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such camera", "cameras": list(self.workers)}),
                                   content_type="application/json")
        if not self.options.stream:
            raise web.HTTPNotFound(text=json.dumps({"error": "streaming is off: start the server with --stream"}),
                                   content_type="application/json")
        return worker

    # --- pages and JSON --------------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.html, content_type="text/html",
                            headers={"Content-Security-Policy": self.csp, **NO_CACHE})

    async def config(self, request: web.Request) -> web.Response:
        cams = [{"camera": w.id, "source": w.source} for w in self.workers.values()]
        return web.json_response({"version": __version__, "cameras": cams, "stream": self.options.stream,
                                  "redact": self.options.redact, "classes": list(self.classes),
                                  "timeline_s": self.options.timeline_s}, headers=NO_CACHE)

    async def faces(self, request: web.Request) -> web.Response:
        """Per camera: its status and its newest result (``result``: a ``fer-edge run`` JSON line, or null)."""
        out = []
        for w in self.workers.values():
            env = self.hub.latest.get(w.id)
            out.append({**w.snapshot(self.options.stale_s), "ts": env["ts"] if env else None,
                        "result": env["result"] if env else None})
        return web.json_response({"cameras": out}, headers=NO_CACHE)

    async def timeline(self, request: web.Request) -> web.Response:
        try:
            seconds = min(float(request.query.get("seconds", self.options.timeline_s)), self.options.timeline_s)
        except ValueError:
            raise web.HTTPBadRequest(text="seconds must be a number") from None
        return web.json_response({"changes": self.hub.changes_since(seconds, request.query.get("camera"))},
                                 headers=NO_CACHE)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while every camera delivers frames, else 503 (camera ids and states only: no token needed)."""
        states = {w.id: w.state if w.healthy(self.options.stale_s) else f"down ({w.state})"
                  for w in self.workers.values()}
        ok = all(w.healthy(self.options.stale_s) for w in self.workers.values())
        return web.json_response({"ok": ok, "cameras": states}, status=200 if ok else 503, headers=NO_CACHE)

    async def metrics(self, request: web.Request) -> web.Response:
        body = render(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, **NO_CACHE})

    # --- streams ---------------------------------------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: one ``data:`` line per result (``?changes=1``: per label change);
        ``?camera=ID`` for one camera."""
        camera = request.query.get("camera")
        if camera is not None and camera not in self.workers:
            raise web.HTTPNotFound(text="no such camera")
        changes = request.query.get("changes", "0").lower() in ("1", "true", "yes")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
                                           **NO_CACHE})
        await resp.prepare(request)
        sub = self.hub.subscribe(changes, camera)
        try:
            await resp.write(b"retry: 2000\n: fer-edge events\n\n")
            while not self.hub.closed:
                try:
                    line = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                if line is not None:
                    await asyncio.sleep(EVENTS_BATCH_S)
                lines = [line]
                while not sub.queue.empty():
                    lines.append(sub.queue.get_nowait())
                if None in lines:
                    break
                await resp.write(b"".join(b"data: " + ln + b"\n\n" for ln in lines if ln is not None))
        except ConnectionError:  # the viewer left
            pass
        finally:
            self.hub.unsubscribe(sub)
        return resp

    async def mjpeg(self, request: web.Request) -> web.StreamResponse:
        """The annotated view as multipart MJPEG; each viewer is sent the newest frame whenever it is ready for
        one (at most ``--stream-fps``), so a slow viewer skips frames and never holds the pipeline back."""
        worker = self._worker(request)
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=ferframe",
                                           **NO_CACHE})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        gap = 1.0 / max(0.1, self.options.stream_fps)
        last_version, last_sent = -1, 0.0
        self.hub.viewers["stream"] += 1
        try:
            while not self.hub.closed:
                got = await loop.run_in_executor(self.encoder, self._encode, worker)
                if got is not None and got[0] != last_version:
                    last_version, data = got
                    await resp.write(b"--ferframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                    last_sent = loop.time()
                await self.hub.next_frame(worker.id, 5.0)
                wait = last_sent + gap - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
        except ConnectionError:  # the viewer left
            pass
        finally:
            self.hub.viewers["stream"] -= 1
        return resp

    async def snapshot(self, request: web.Request) -> web.Response:
        worker = self._worker(request)
        got = await asyncio.get_running_loop().run_in_executor(self.encoder, self._encode, worker)
        if got is None:
            return web.json_response({"error": "no frame yet"}, status=503, headers=NO_CACHE)
        return web.Response(body=got[1], content_type="image/jpeg", headers=NO_CACHE)

    def _encode(self, worker: CameraWorker) -> tuple[int, bytes] | None:
        return worker.jpeg(1.0 / max(0.1, self.options.stream_fps), self.options.jpeg_quality, self.options.redact)

    async def _on_shutdown(self, app: web.Application) -> None:
        self.hub.close()
        self.encoder.shutdown(wait=False)
