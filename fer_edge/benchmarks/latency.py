"""Timing loops and their statistics: percentiles over sorted samples, run-to-run spread over rounds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Summary of latency samples in milliseconds."""

    n: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_ms: np.ndarray, q: float) -> float:
    """Linear-interpolated percentile of an already sorted 1-D array (q in 0..100)."""
    if len(sorted_ms) == 0:
        raise ValueError("no samples")
    pos = (len(sorted_ms) - 1) * q / 100.0
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(sorted_ms) - 1)
    return float(sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo))


def summarize(samples_ms: list[float] | np.ndarray) -> LatencyStats:
    """Mean, std, min, p50, p90, p99, max of the samples (sorted first, so percentiles are ordered)."""
    s = np.sort(np.asarray(samples_ms, dtype=np.float64))
    return LatencyStats(n=len(s), mean=float(s.mean()), std=float(s.std()), min=float(s[0]),
                        p50=percentile(s, 50), p90=percentile(s, 90), p99=percentile(s, 99), max=float(s[-1]))


def spread(round_p50s: list[float]) -> dict[str, float | None]:
    """Run-to-run variation of per-round medians: coefficient of variation and (max - min) / median."""
    a = np.asarray(round_p50s, dtype=np.float64)
    if len(a) < 2 or float(np.median(a)) <= 0:
        return {"cv": None, "range": None}
    return {"cv": float(a.std(ddof=1) / a.mean()), "range": float((a.max() - a.min()) / np.median(a))}


def time_calls(fn: Callable[[np.ndarray], Any], inputs: list[np.ndarray], n: int) -> list[float]:
    """Call ``fn`` ``n`` times, cycling through ``inputs``; each call's wall time in ms."""
    out = []
    for i in range(n):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter_ns()
        fn(x)
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def time_round(fn: Callable[[np.ndarray], Any], inputs: list[np.ndarray], min_calls: int, min_time_s: float,
               max_calls: int = 100_000) -> list[float]:
    """One latency round: at least ``min_calls`` calls and at least ``min_time_s`` seconds (so a fast model is
    timed over many scheduler slices, not a few milliseconds), at most ``max_calls``; each call's ms."""
    out: list[float] = []
    start = time.perf_counter()
    while len(out) < max_calls:
        out += time_calls(fn, inputs, min(min_calls, max_calls - len(out)) or 1)
        if len(out) >= min_calls and time.perf_counter() - start >= min_time_s:
            break
    return out


def thin(samples: list[float], keep: int) -> list[float]:
    """At most ``keep`` samples, evenly strided in time order (for storing distributions)."""
    if len(samples) <= keep:
        return list(samples)
    idx = np.linspace(0, len(samples) - 1, keep).round().astype(int)
    return [samples[i] for i in idx]


def throughput(fn: Callable[[np.ndarray], Any], batch: np.ndarray, max_calls: int, min_calls: int = 3,
               budget_s: float = 0.5) -> float:
    """Faces per second at one batch size: batch size / median call time, after two warm calls.

    Calls continue until ``budget_s`` has passed and ``min_calls`` were made, or ``max_calls`` were made.
    """
    for _ in range(2):
        fn(batch)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max(max_calls, min_calls):
        t0 = time.perf_counter_ns()
        fn(batch)
        times.append((time.perf_counter_ns() - t0) / 1e9)
        if len(times) >= min_calls and time.perf_counter() - start >= budget_s:
            break
    return float(len(batch) / np.median(times))
