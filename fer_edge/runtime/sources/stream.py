"""A network stream (RTSP, HTTP MJPEG, HLS...) read by cv2.VideoCapture through FFmpeg, with open and read
timeouts, reopened with backoff when it drops."""

from __future__ import annotations

import re

import cv2

from fer_edge.redact import redact
from fer_edge.runtime.sources.base import SOURCES
from fer_edge.runtime.sources.capture import ReconnectingCapture

_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.I)


@SOURCES.register("stream")
class StreamSource(ReconnectingCapture):
    """``StreamSource("rtsp://host/stream")``; ``timeout`` seconds for opening and for each read."""

    kind = "stream"

    def __init__(self, spec: str, timeout: float = 5.0, **kwargs: float) -> None:
        self.timeout_ms = int(timeout * 1000)
        super().__init__(spec, **kwargs)

    @classmethod
    def accepts(cls, spec: str) -> bool:
        return bool(_URL.match(str(spec)))

    def describe(self) -> str:
        return f"stream {redact(self.spec)}"

    def not_found(self) -> str:
        return f"{self.describe()} cannot be opened (unreachable, wrong URL or unsupported format)"

    def _capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        return cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
