"""How a run stops: the first SIGINT, SIGTERM or SIGHUP (Ctrl-C, ``systemctl stop``, ``docker stop``, ``timeout``,
a closed terminal) asks it to stop after the current frame, with its outputs finalized and its summary printed;
a second one breaks a stuck read. Signals that arrive while the outputs are being finalized are ignored, and so
are those the process was started ignoring (``nohup``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class StopRequest:
    """A stop asked for by a signal (``signal_name``) or by code (``set``); ``wait(s)`` sleeps unless stopped."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None
        self.finalizing = False

    def set(self, signal_name: str | None = None) -> None:
        if not self._event.is_set() and signal_name is not None:
            self.signal_name = signal_name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a stop was asked for (at once or meanwhile)."""
        return self._event.wait(seconds)

    def reason(self) -> str:
        """The summary's "stopped by" text: Ctrl-C reads "interrupted (SIGINT)", service stops "stopped (SIGTERM)"."""
        if self.signal_name == "SIGINT":
            return "interrupted (SIGINT)"
        return f"stopped ({self.signal_name})" if self.signal_name else "stopped"


@contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """Route SIGINT/SIGTERM/SIGHUP into a StopRequest for the duration (main thread only; elsewhere the request
    is only set by code). The previous handlers come back on exit."""
    stop = stop or StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.finalizing:
            return
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set(signal.Signals(signum).name)

    previous = {}
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)  # no SIGHUP on Windows
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_code(stopped_by: str) -> int:
    """The command's exit status for a run that ended this way: 130 after Ctrl-C (the shell's convention), else 0
    (end of input, --max-frames, a service stop by SIGTERM/SIGHUP)."""
    return 130 if stopped_by.startswith("interrupted") else 0
