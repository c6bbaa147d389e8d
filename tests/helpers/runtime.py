"""Helpers shared by the runtime tests: face frames, clips, local MJPEG and RTSP servers (tiny bundles:
``helpers.bundles``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fer_edge.runtime.video_out import readable_frames  # noqa: F401  (re-exported for the tests)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONFAULTHANDLER", "1")  # a child that hangs can be made to print its stacks (SIGABRT)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """``proc.communicate(timeout)``; a child still running then is aborted with SIGABRT, which (faulthandler on,
    see above) prints every thread's stack to its stderr, and an AssertionError carries those stacks."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        raise AssertionError(f"still running {timeout:g} s later; its stacks:\n{(err or '')[-6000:]}") from None


def face_frame(jaffe: Path | None = None, size: tuple[int, int] = (640, 480), faces: int = 2) -> np.ndarray:
    """A BGR frame with ``faces`` copies of a real JAFFE face (or the sample clip's first frame) side by side."""
    w, h = size
    frame = np.full((h, w, 3), 120, np.uint8)
    if jaffe is not None:
        img = cv2.imread(str(sorted(jaffe.glob("*.tiff"))[0]), cv2.IMREAD_COLOR)
        side = min(h, w // faces) - 8
        img = cv2.resize(img, (side, side))
        for i in range(faces):
            x = i * (w // faces) + 4
            frame[(h - side) // 2:(h - side) // 2 + side, x:x + side] = img
        return frame
    cap = cv2.VideoCapture(str(sample_clip()))
    ok, img = cap.read()
    cap.release()
    assert ok
    return cv2.resize(img, size)


def sample_clip() -> Path:
    return Path(__file__).resolve().parents[2] / "fer_edge" / "assets" / "sample" / "sample.mp4"


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


class MJPEGServer:
    """A multipart/x-mixed-replace JPEG stream on 127.0.0.1 (like an IP camera), in a thread.

    ``drop_after``: the first connection is closed after that many frames (a dropped stream); later ones
    stream until ``close()``. ``fps`` paces the frames; ``port`` 0 = any free one.
    """

    def __init__(self, frame: np.ndarray, fps: float = 25.0, drop_after: int | None = None, port: int = 0) -> None:
        ok, buf = cv2.imencode(".jpg", frame)
        assert ok
        self.jpeg = buf.tobytes()
        self.period = 1.0 / fps
        self.drop_after = drop_after
        self.connections = 0
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                first = server.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                sent = 0
                deadline = time.monotonic() + 60  # never stream forever
                try:
                    while not server.stopping.is_set() and time.monotonic() < deadline:
                        if first and server.drop_after is not None and sent >= server.drop_after:
                            break
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(server.jpeg)}\r\n\r\n".encode())
                        self.wfile.write(server.jpeg + b"\r\n")
                        self.wfile.flush()
                        sent += 1
                        time.sleep(server.period)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def mjpeg_server(frame: np.ndarray, **kwargs: float) -> Iterator[MJPEGServer]:
    srv = MJPEGServer(frame, **kwargs)
    try:
        yield srv
    finally:
        srv.close()


def write_h264(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """An H.264 mp4 (what IP cameras send) written with PyAV, a keyframe every second."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(fps), "bf": "0"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(stream.encode())
    return path


class RTSPServer:
    """A real RTSP server (aio-rtsp-toolkit, RTP over TCP) publishing the files of ``folder`` in a subprocess on
    127.0.0.1; ``stop()`` drops it (the camera goes away), ``start()`` brings it back on the same port."""

    def __init__(self, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.folder = folder
        self.proc: Any = None
        self.start()

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        import socket
        import subprocess

        code = ("import asyncio, logging; logging.disable(logging.CRITICAL); import aio_rtsp_toolkit.server as s; "
                f"asyncio.run(s.serve({str(self.folder)!r}, '127.0.0.1', {self.port}))")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the RTSP test server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@contextlib.contextmanager
def rtsp_server(folder: Path) -> Iterator[RTSPServer]:
    pytest.importorskip("aio_rtsp_toolkit", reason="RTSP tests need aio-rtsp-toolkit[server] (the dev extra)")
    srv = RTSPServer(folder)
    try:
        yield srv
    finally:
        srv.stop()
