"""Fan-out to HTTP clients, on the event loop: the newest result per camera, a bounded queue per event-stream
client (the oldest line is dropped when a client falls behind), a "new frame" signal per camera for the MJPEG
viewers (each takes the newest frame when it is ready for one), and the recent label changes for the timeline."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

QUEUE_LINES = 512
TIMELINE_CHANGES = 5000  # per camera, however short the time they span (about 1.5 MB)


class Subscriber:
    """One event-stream client: results or label changes, of one camera or all."""

    def __init__(self, changes: bool, camera: str | None, maxsize: int = QUEUE_LINES) -> None:
        self.changes = changes
        self.camera = camera
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, line: bytes | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(line)


class Hub:
    """Owned by the event loop thread; camera threads call ``publish`` through ``loop.call_soon_threadsafe``."""

    def __init__(self, cameras: list[str], timeline_s: float = 600.0) -> None:
        self.latest: dict[str, dict[str, Any] | None] = dict.fromkeys(cameras)
        self.timeline_s = float(timeline_s)
        self.timeline: dict[str, deque[dict[str, Any]]] = {c: deque(maxlen=TIMELINE_CHANGES) for c in cameras}
        self.subscribers: set[Subscriber] = set()
        self.viewers = {"stream": 0, "events": 0}
        self.events_dropped = 0
        self.closed = False
        self._frame: dict[str, asyncio.Event] = {c: asyncio.Event() for c in cameras}

    def publish(self, camera: str, envelope: dict[str, Any] | None, line: bytes | None,
                changes: list[dict[str, Any]], change_lines: list[bytes]) -> None:
        """A camera's result (``envelope``/``line``; None when only label changes are reported) and its changes."""
        if self.closed:
            return
        if envelope is not None:
            self.latest[camera] = envelope
        timeline = self.timeline[camera]
        timeline.extend(changes)
        horizon = time.time() - self.timeline_s
        while timeline and timeline[0]["ts"] < horizon:
            timeline.popleft()
        for sub in self.subscribers:
            if sub.camera is not None and sub.camera != camera:
                continue
            if sub.changes:
                for cl in change_lines:
                    sub.offer(cl)
            elif line is not None:
                sub.offer(line)
        if line is not None:
            event, self._frame[camera] = self._frame[camera], asyncio.Event()
            event.set()

    def subscribe(self, changes: bool, camera: str | None) -> Subscriber:
        sub = Subscriber(changes, camera)
        self.subscribers.add(sub)
        self.viewers["events"] += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            self.viewers["events"] -= 1
            self.events_dropped += sub.dropped

    async def next_frame(self, camera: str, timeout: float) -> bool:
        """Wait for the camera's next result (False on timeout or when closing)."""
        if self.closed:
            return False
        try:
            await asyncio.wait_for(self._frame[camera].wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return not self.closed

    def changes_since(self, seconds: float, camera: str | None = None) -> list[dict[str, Any]]:
        horizon = time.time() - seconds
        cams = [camera] if camera is not None else list(self.timeline)
        out = [c for cam in cams for c in self.timeline.get(cam, ()) if c["ts"] >= horizon]
        return sorted(out, key=lambda c: c["ts"])

    def close(self) -> None:
        """End every stream (their handlers return)."""
        self.closed = True
        for sub in list(self.subscribers):
            sub.offer(None)
        for event in self._frame.values():
            event.set()
