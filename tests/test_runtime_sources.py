"""Frame sources: video file, image, folder, camera, HTTP MJPEG stream (served here) with a drop and a reconnect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.runtime import face_frame, mjpeg_server, rtsp_server, write_h264, write_video

from fer_edge.errors import SourceError
from fer_edge.runtime.sources import SOURCES, Frame, LatestFrame, SourceBase, open_source
from fer_edge.runtime.sources.capture import ReconnectingCapture


def _frames(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    w, h = size
    return [np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)]


def test_video_file_frames_in_order_with_media_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", _frames(12), fps=10)
    with open_source(path) as src:
        assert src.kind == "video"
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert frames[5].time == pytest.approx(0.5)
    assert frames[0].image.shape == (120, 160, 3)
    assert src.stats.frames == 12 and src.stats.skipped == 0


def test_truncated_video_ends_cleanly(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", [face_frame(size=(320, 240)) for _ in range(30)])
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        src = open_source(cut)
    except SourceError as exc:  # some builds refuse the file at open: still one clear line
        assert "cut.mp4" in str(exc)
        return
    with src:
        n = sum(1 for _ in src)
    assert 0 < n < 30


class _FakeCapture:
    """Stands in for cv2.VideoCapture: plays a script of (ok, image) reads."""

    def __init__(self, script: list[tuple[bool, np.ndarray | None]]) -> None:
        self.script = list(script)

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.script.pop(0) if self.script else (False, None)

    def release(self) -> None:
        pass


def test_corrupt_video_frame_is_skipped_and_counted(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", _frames(3))
    src = open_source(path)
    good = np.zeros((8, 8, 3), np.uint8)
    src.cap.release()
    src.cap, src.count = _FakeCapture([(True, good), (False, None), (True, np.zeros((0, 0), np.uint8)),
                                       (True, good)]), 4
    frames = list(src)
    assert len(frames) == 2 and src.stats.skipped == 2 and "undecodable" in src.stats.problems[0]


def test_single_image_and_gray_image(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((50, 60), 200, np.uint8))
    with open_source(tmp_path / "a.png") as src:
        assert src.kind == "image"
        (frame,) = list(src)
    assert frame.image.shape == (50, 60, 3) and frame.name == "a.png"


def test_folder_sorted_and_corrupt_image_skipped(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.png", "d.png"):
        cv2.imwrite(str(tmp_path / name), np.full((40, 40, 3), 100, np.uint8))
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as src:
        assert src.kind == "folder"
        names = [f.name for f in src]
    assert names == ["a.png", "b.jpg", "d.png"]
    assert src.stats.skipped == 1 and "c.jpg" in src.stats.problems[0]


@pytest.mark.parametrize(("spec", "message"), [
    ("/no/such/clip.mp4", "not found"),
    ("99", r"camera 99 not found"),
])
def test_missing_sources_are_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_unreadable_video_and_empty_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match=r"bad\.mp4"):
        src = open_source(bad)
        list(src)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="cannot be decoded"):
        (tmp_path / "x.png").write_bytes(b"garbage")
        list(open_source(tmp_path / "x.png"))


def test_source_registry_names() -> None:
    assert set(SOURCES.names()) == {"camera", "video", "image", "folder", "stream"}
    assert SOURCES.get("stream").accepts("rtsp://user:pw@cam/1")
    assert SOURCES.get("camera").accepts("0") and not SOURCES.get("camera").accepts("0.mp4")


def test_stream_url_credentials_never_printed() -> None:
    with pytest.raises(SourceError) as err:
        open_source("rtsp://admin:secret@127.0.0.1:9/live", timeout=1.0)
    assert "secret" not in str(err.value) and "***@127.0.0.1" in str(err.value)


def test_http_mjpeg_stream_reconnects_after_a_drop() -> None:
    frame = face_frame(size=(320, 240))
    with mjpeg_server(frame, fps=40, drop_after=10) as srv:
        t0 = time.monotonic()
        with open_source(srv.url, retries=3, backoff=0.1, timeout=3.0) as src:
            assert src.kind == "stream"
            got = []
            for f in src:
                got.append(f)
                if len(got) >= 25 or time.monotonic() - t0 > 30:
                    break
    assert len(got) == 25, src.stats
    assert src.stats.reconnects >= 1 and srv.connections >= 2
    assert got[-1].image.shape == (240, 320, 3)
    assert time.monotonic() - t0 < 30


def test_stream_that_stays_down_gives_up_after_bounded_retries() -> None:
    frame = face_frame(size=(160, 120))
    with mjpeg_server(frame, fps=40, drop_after=5) as srv:
        src = open_source(srv.url, retries=2, backoff=0.05, timeout=2.0)
        srv.close()  # server gone: every reopen fails
        t0 = time.monotonic()
        n = 0
        with pytest.raises(SourceError, match="could not be reopened after 2 attempts"):
            for _ in src:
                n += 1
                assert n < 1000
        assert time.monotonic() - t0 < 20
        src.close()


class _Flaky(ReconnectingCapture):
    """A capture whose opens fail after the first (a camera unplugged)."""

    kind = "camera"

    def __init__(self, **kwargs: float) -> None:
        self.opens = 0
        super().__init__("0", **kwargs)

    def _capture(self) -> _FakeCapture | None:
        self.opens += 1
        return _FakeCapture([(True, np.zeros((4, 4, 3), np.uint8))] * 3) if self.opens == 1 else None


def test_reopen_backoff_doubles_and_is_bounded() -> None:
    waits: list[float] = []
    src = _Flaky(retries=4, backoff=0.5, max_wait=1.5, sleep=waits.append)
    with pytest.raises(SourceError, match="camera 0 dropped"):
        list(src)
    assert src.stats.frames == 3
    assert waits == [0.5, 1.0, 1.5, 1.5]


class _Ticking(SourceBase):
    """A live source producing numbered frames every ``period`` s, ``n`` of them, then (optionally) an error."""

    kind = "camera"
    live = True

    def __init__(self, n: int, period: float, fail: bool = False) -> None:
        super().__init__("0")
        self.n, self.period, self.fail, self.closed = n, period, fail, 0

    def frames(self) -> Iterator[Frame]:
        for i in range(self.n):
            time.sleep(self.period)
            yield self._emit(np.full((8, 8, 3), i, np.uint8))
        if self.fail:
            raise SourceError("camera 0 dropped and could not be reopened after 1 attempts")

    def close(self) -> None:
        self.closed += 1


def test_latest_frame_drops_what_a_slow_consumer_misses() -> None:
    src = LatestFrame(_Ticking(n=60, period=0.005))
    got = []
    with src:
        for f in src:
            got.append(f.index)
            time.sleep(0.03)  # a consumer ~6x slower than the camera
    idx = np.array(got)
    assert idx[-1] == 59  # the newest frame is never lost
    assert (np.diff(idx) > 0).all() and (np.diff(idx) > 1).any()  # in order, with gaps where frames were dropped
    assert src.stats.dropped == 60 - len(got) > 0 and src.stats.frames == 60
    assert src.source.closed >= 1 and src._thread is None


def test_latest_frame_keeps_every_frame_for_a_fast_consumer_and_passes_errors_on() -> None:
    src = LatestFrame(_Ticking(n=10, period=0.02, fail=True))
    got = []
    with pytest.raises(SourceError, match="could not be reopened"):
        for f in src:
            got.append(f.index)
    src.close()
    assert got == list(range(10)) and src.stats.dropped == 0


def test_latest_frame_stops_its_reader_when_the_consumer_stops_early() -> None:
    inner = _Ticking(n=10_000, period=0.001)
    src = LatestFrame(inner)
    for f in src:
        if f.index >= 5:
            break
    thread = src._thread
    src.close()
    assert thread is not None and not thread.is_alive() and inner.closed == 1
    assert inner.stats.frames < 10_000


def test_open_source_latest_wraps_live_sources_only(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", _frames(3))
    with open_source(str(clip), latest=True) as src:  # a file is never dropped from
        assert not isinstance(src, LatestFrame) and len(list(src)) == 3
    frame = face_frame(size=(160, 120))
    with mjpeg_server(frame, fps=100) as srv, open_source(srv.url, latest=True, timeout=3.0) as src:
        assert isinstance(src, LatestFrame) and src.kind == "stream" and src.describe().startswith("stream ")
        got = []
        for f in src:
            got.append(f)
            time.sleep(0.05)
            if len(got) == 5:
                break
    assert got[-1].image.shape == (120, 160, 3) and src.stats.dropped > 0


def test_rtsp_stream_is_read_and_reopened_after_the_server_drops(tmp_path: Path) -> None:
    """A real RTSP server (H.264 over RTP/TCP, as IP cameras send it): frames arrive through OpenCV's FFmpeg,
    and when the server goes away and comes back the source reconnects and goes on."""
    pytest.importorskip("av")
    clip = [face_frame(size=(320, 240))] * 150  # 6 s: long enough that the stream never ends here
    write_h264(tmp_path / "cam.mp4", clip)
    with rtsp_server(tmp_path) as srv:
        src = open_source(srv.url("cam.mp4"), retries=6, backoff=0.25, timeout=5.0)
        assert src.kind == "stream"
        got = []
        with src:
            for f in src:
                got.append(f.image)
                if len(got) == 10:
                    srv.stop()
                    srv.start()
                if len(got) >= 70:
                    break
    assert len(got) == 70 and src.stats.reconnects == 1
    assert got[0].shape == (240, 320, 3) and np.abs(got[-1].astype(int) - clip[0]).mean() < 8  # decoded, lossy
