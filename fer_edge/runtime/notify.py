"""systemd service notifications (sd_notify) for a run under a ``Type=notify`` unit with ``WatchdogSec=``.

The protocol is one datagram per message on the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name``
for the abstract namespace); ``$WATCHDOG_USEC`` is the watchdog period, pinged here at half of it. Outside systemd
(no ``$NOTIFY_SOCKET``) every call is a no-op, so the run loop can call these unconditionally. Nothing here ever
raises: a failed notification must not stop the run.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    """Sends READY, WATCHDOG, STATUS and STOPPING to systemd; ``tick()`` is cheap enough to call every frame."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + addr[1:] if addr.startswith("@") else addr) or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.interval: float | None = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        self._last = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        """One datagram; False (and nothing raised) when there is no socket or it refuses."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message.encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """The service is up (the source is open): systemd's start job completes."""
        self._last = time.monotonic()
        return self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def tick(self) -> bool:
        """Ping the watchdog if half its period has passed since the last ping; call it from the frame loop."""
        if self.interval is None:
            return False
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")


_default: Notifier | None = None


def notifier() -> Notifier:
    """The process's notifier, read from the environment once."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default
