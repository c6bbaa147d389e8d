"""Resident memory of this process: current RSS and the peak (VmHWM, else ru_maxrss), in MB (10^6 bytes)."""

from __future__ import annotations

import sys
from pathlib import Path


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    """Current resident set size (VmRSS), or None where /proc is absent."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024 / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far: VmHWM where /proc has it, else ru_maxrss.

    VmHWM belongs to this program alone; Linux carries ru_maxrss across exec, so in a freshly started
    worker it would still report the parent's peak.
    """
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024 / 1e6
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
