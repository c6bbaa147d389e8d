"""The `fer-edge serve` dashboard in real headless Chromium, driven over the DevTools protocol (``--dump-dom``
with ``--virtual-time-budget`` never returns on a page holding an endless MJPEG and event stream): the live image
loads and updates, a face's label appears, the timeline is drawn, and the token leaves the address bar.

Skipped, with the reason, where no Chromium is installed (CI: `apt-get install -y chromium`)."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from helpers.serve import SAMPLE, need_serve_extra, serve

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")
TOKEN = "dashboard-token-0123456789"


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip("no Chromium binary on PATH (apt-get install -y chromium) to render the dashboard")
    return found


class Page:
    """One Chromium tab over the DevTools websocket (aiohttp's client)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expression: str) -> Any:
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res["result"].get("value")

    async def until(self, expression: str, what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.3)
        raise AssertionError(f"the dashboard never showed {what}")


async def _drive(browser: str, url: str, profile: Path) -> dict[str, Any]:
    import aiohttp

    proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1000,1400",
                             "about:blank"], stderr=subprocess.PIPE, text=True)
    try:
        ws_url = None
        deadline = time.monotonic() + 60
        while ws_url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            ws_url = m.group(1) if m else None
        assert ws_url, "Chromium did not open its DevTools port"
        port = re.search(r":(\d+)/", ws_url).group(1)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                target = next(t for t in await r.json() if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.navigate", url=url)
                out: dict[str, Any] = {}
                out["width"] = await page.until("(document.querySelector('img.view') || {dataset: {}}).dataset.width",
                                                "a loaded live image")
                out["label"] = await page.until("(document.querySelector('tr.face td.label') || {}).textContent",
                                                "a face's label")
                out["status"] = await page.until(
                    "/1 of 1 camera/.test(document.getElementById('status').textContent) && "
                    "document.getElementById('status').textContent", "the camera as delivering")
                out["href"] = await page.js("location.href")
                out["timeline"] = await page.until(
                    "(() => { const c = document.querySelector('canvas.timeline'); const g = c.getContext('2d');"
                    " const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;"
                    " for (let i = 0; i < d.length; i += 4) if (d[i + 3] && Math.abs(d[i] - d[i + 1]) > 40) n++;"
                    " return n; })()", "coloured timeline bars")
                rect = await page.js("(() => { const r = document.querySelector('img.view').getBoundingClientRect();"
                                     " return [r.x, r.y, r.width, r.height]; })()")
                shots = []
                for _ in range(2):
                    shot = await page.call("Page.captureScreenshot", format="png",
                                           clip={"x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3],
                                                 "scale": 1})
                    shots.append(cv2.imdecode(np.frombuffer(base64.b64decode(shot["data"]), np.uint8),
                                              cv2.IMREAD_COLOR))
                    await asyncio.sleep(1.5)
                out["shots"] = shots
                return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dashboard_shows_the_live_view_labels_and_timeline(browser: str, tmp_path: Path) -> None:
    need_serve_extra()
    with serve("--source", str(SAMPLE), "--stream", token=TOKEN) as srv:
        srv.wait_for(lambda: srv.get("/healthz", None)[0] == 200, "the first frames")
        got = asyncio.run(_drive(browser, f"{srv.url}?token={TOKEN}", tmp_path / "profile"))
        classes = srv.json("/api/config")["classes"]
    assert got["width"] == "640"
    assert got["label"].strip().lower() in classes
    assert TOKEN not in got["href"]
    assert got["timeline"] > 50
    first, second = got["shots"]
    assert first is not None and first.shape[0] > 100 and first.shape[1] > 100
    assert first.std() > 20  # a picture, not a blank box
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.5  # and it moves
