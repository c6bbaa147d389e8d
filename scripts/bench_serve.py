#!/usr/bin/env python
"""Load benchmark of `fer-edge serve`: the pipeline's frames per second with N concurrent viewers (each one MJPEG
stream and one event stream) against none, in alternating phases, and the server's memory over a long run while
viewers connect and leave. Writes a JSON record and prints a Markdown table.

    python scripts/bench_serve.py --viewers 20 --phase 20 --rounds 3 --out results/serve_load.json
    python scripts/bench_serve.py --memory-frames 10000 --out results/serve_memory.json

The server plays the sample clip in a loop as fast as it can (``--no-pace``), so its FPS is CPU-bound and any
cost of the viewers shows. The viewers run in a separate process on the same machine (their own CPU use counts
against the server's: a pessimistic setting for a device whose viewers are elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"


def start_server(extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "fer_edge.cli", "serve", "--source", str(SAMPLE), "--no-pace", "--stream",
           "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        m = re.search(r"on (http://\S+/) ", line)
        if m:
            return proc, m.group(1)
    raise SystemExit("the server did not start")


def frames_total(url: str) -> float:
    with urllib.request.urlopen(url + "metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("fer_edge_frames_total{"):
                return float(line.rsplit(" ", 1)[1])
    raise SystemExit("no fer_edge_frames_total in /metrics")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _viewer(session: Any, url: str, stop: float, counts: dict[str, int]) -> None:
    async def read(path: str, key: str) -> None:
        try:
            async with session.get(url + path) as r:
                async for chunk in r.content.iter_any():
                    counts[key] += len(chunk)
                    if time.monotonic() > stop:
                        return
        except Exception as exc:  # count it; the other viewers go on
            counts["errors"] += 1
            counts.setdefault("last_error", repr(exc)[:200])

    await asyncio.gather(read("stream/cam0.mjpg", "stream_bytes"), read("events", "event_bytes"))


async def _viewers(url: str, n: int, seconds: float) -> dict[str, int]:
    import aiohttp

    counts = {"stream_bytes": 0, "event_bytes": 0, "errors": 0}
    stop = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=seconds + 30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(_viewer(session, url, stop, counts) for _ in range(n)))
    return counts


def viewers_process(url: str, n: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--client", url, "--viewers", str(n), "--phase", str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def phase(url: str, pid: int, seconds: float, viewers: int) -> dict[str, Any]:
    client = viewers_process(url, viewers, seconds + 2) if viewers else None
    time.sleep(2 if viewers else 0)  # let them connect
    f0, t0, c0 = frames_total(url), time.monotonic(), cpu_s(pid)
    c0_client = cpu_s(client.pid) if client is not None else 0.0
    time.sleep(seconds)
    f1, t1, c1 = frames_total(url), time.monotonic(), cpu_s(pid)
    c1_client = cpu_s(client.pid) if client is not None else 0.0
    out: dict[str, Any] = {"viewers": viewers, "seconds": round(t1 - t0, 2), "frames": int(f1 - f0),
                           "fps": round((f1 - f0) / (t1 - t0), 2),
                           "server_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
                           "server_cpu_ms_per_frame": round(1e3 * (c1 - c0) / max(1, f1 - f0), 2),
                           "viewers_cpu_pct": round(100 * (c1_client - c0_client) / (t1 - t0), 1),
                           "load_avg": os.getloadavg()[0]}
    if client is not None:
        got, _ = client.communicate(timeout=seconds + 60)
        out["client"] = json.loads(got.strip().splitlines()[-1])
    return out


def load(args: argparse.Namespace) -> dict[str, Any]:
    proc, url = start_server(args.server_args)
    try:
        time.sleep(args.warmup)
        phases = []
        for r in range(args.rounds):
            for n in (0, args.viewers) if r % 2 == 0 else (args.viewers, 0):
                phases.append(phase(url, proc.pid, args.phase, n))
                p = phases[-1]
                print(f"  {p['viewers']:>2} viewers: {p['fps']:.1f} FPS, server {p['server_cpu_pct']}% CPU "
                      f"({p['server_cpu_ms_per_frame']} ms/frame), viewers {p['viewers_cpu_pct']}% CPU, "
                      f"load {p['load_avg']:.1f}", file=sys.stderr)
        base = [p["fps"] for p in phases if p["viewers"] == 0]
        loaded = [p["fps"] for p in phases if p["viewers"]]
        none_fps, with_fps = statistics.mean(base), statistics.mean(loaded)
        ms = {n: statistics.mean(p["server_cpu_ms_per_frame"] for p in phases if p["viewers"] == n)
              for n in (0, args.viewers)}
        return {"server_cpu_ms_per_frame_none": round(ms[0], 2),
                "server_cpu_ms_per_frame_viewers": round(ms[args.viewers], 2),
                "kind": "serve_load", "viewers": args.viewers, "phase_s": args.phase, "rounds": args.rounds,
                "server_args": args.server_args, "phases": phases, "fps_none": round(none_fps, 2),
                "fps_viewers": round(with_fps, 2), "cost_pct": round(100 * (1 - with_fps / none_fps), 1)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def memory(args: argparse.Namespace) -> dict[str, Any]:
    """Run until ``memory_frames`` frames while viewers connect for 5 s and leave for 5 s, sampling RSS."""
    proc, url = start_server(args.server_args)
    samples = []
    try:
        time.sleep(args.warmup)
        start = frames_total(url)
        t0 = time.monotonic()
        while frames_total(url) - start < args.memory_frames:
            client = viewers_process(url, args.viewers, 5)
            client.communicate(timeout=120)
            time.sleep(5)
            samples.append({"t": round(time.monotonic() - t0, 1), "frames": int(frames_total(url) - start),
                            "rss_mb": round(rss_mb(proc.pid), 1)})
            print(f"  {samples[-1]}", file=sys.stderr)
        rss = [s["rss_mb"] for s in samples]
        return {"kind": "serve_memory", "viewers": args.viewers, "frames": samples[-1]["frames"],
                "samples": samples, "rss_first_mb": rss[0], "rss_last_mb": rss[-1], "rss_max_mb": max(rss)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", type=int, default=20)
    ap.add_argument("--phase", type=float, default=20.0, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=2, help="pairs of phases (none, viewers), alternating order")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--memory-frames", type=int, default=0, help="instead: a memory run of this many frames")
    ap.add_argument("--out", default=None, help="JSON record to write")
    ap.add_argument("--client", default=None, help=argparse.SUPPRESS)
    ap.add_argument("server_args", nargs="*", help="extra `fer-edge serve` options (after --)")
    args = ap.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_viewers(args.client, args.viewers, args.phase))))
        return
    record = memory(args) if args.memory_frames else load(args)
    record.update({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                   "when": time.strftime("%Y-%m-%d %H:%M:%S")})
    if args.out:
        from fer_edge.atomic import write_json

        write_json(args.out, record)
    if record["kind"] == "serve_load":
        print(f"| viewers (MJPEG + events each) | FPS |\n|---|---|\n| 0 | {record['fps_none']:.1f} |\n"
              f"| {record['viewers']} | {record['fps_viewers']:.1f} ({record['cost_pct']:+.1f}% cost) |\n"
              f"server CPU per frame: {record['server_cpu_ms_per_frame_none']} ms without viewers, "
              f"{record['server_cpu_ms_per_frame_viewers']} ms with")
    else:
        print(f"RSS {record['rss_first_mb']:.0f} MB -> {record['rss_last_mb']:.0f} MB (max {record['rss_max_mb']:.0f})"
              f" over {record['frames']} frames")


if __name__ == "__main__":
    main()
