"""The backbone Pareto picture: one point per benched bundle, accuracy of its shipped artifact (int8 TFLite on
LiteRT) against its median latency per face at batch 1 on one thread, point area by parameter count, one marker
and one front per device. ``fer-edge report`` and ``fer-edge bench`` write it as a PNG beside their other outputs."""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fer_edge import atomic
from fer_edge.benchmarks.results import pareto_front

SHIPPED = {"precision": "int8", "format": "tflite", "backend": "litert", "threads": 1}
CAPTION = ("Accuracy of each bundle's int8 TFLite artifact (LiteRT) against its median ms per face at batch 1 on "
           "one thread; point area by parameter count, marker by device; the dashed line and red rings are each "
           "device's Pareto front (nothing else on that device is both faster and at least as accurate).")
MARKERS = "osD^vP*Xh"
FRONT_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:grey")


@dataclass(frozen=True)
class BackbonePoint:
    """One bundle's shipped-precision row, as the picture and the backbone table use it."""

    name: str  # the bundle's shortest unique path suffix: its folder name unless two bundles share it
    backbone: str
    device: str
    ms: float  # p50 latency at batch 1
    accuracy: float  # 0-1
    parameters: int | None
    flops: int | None
    size_mb: float | None
    status: str
    flip_tta: bool
    created: str
    run_id: str = ""
    load: float | None = None  # 1-minute load average when the run started


def start_load(device: dict[str, Any]) -> float | None:
    """The 1-minute load average when a run started, from its results file's device record (a list of 1, 5 and 15
    minute averages, or a bare number): a finite number, else None."""
    value = device.get("load_average")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _quieter_or_newer(p: BackbonePoint, old: BackbonePoint) -> bool:
    """Latency belongs to a quiet machine: the run with the lower load average at its start wins, then the newer."""
    inf = float("inf")
    a, b = (inf if p.load is None else p.load), (inf if old.load is None else old.load)
    return a < b or (a == b and p.created >= old.created)


def backbone_points(doc: dict[str, Any], precision: str = SHIPPED["precision"], fmt: str = SHIPPED["format"],
                    backend: str = SHIPPED["backend"], threads: int = SHIPPED["threads"]) -> list[BackbonePoint]:
    """One point per (device, bundle, flip TTA) with accuracy and latency in the matching row; a bundle benched in
    several runs on one device keeps the row of the run that started on the quietest machine (lowest load average),
    then the latest."""
    latest: dict[tuple[str, str, bool], BackbonePoint] = {}
    names = bundle_names(r["bundle"] or r["model"] for run in doc["runs"] for r in run["rows"])
    for run in doc["runs"]:
        flip = bool(run.get("settings", {}).get("flip_tta"))
        load = start_load(run["device"])
        for r in run["rows"]:
            if (r["precision"], r["format"], r["backend"], r["threads"]) != (precision, fmt, backend, threads):
                continue
            if r["accuracy"] is None or r["latency_p50_ms"] is None:
                continue
            p = BackbonePoint(names[r["bundle"] or r["model"]], r["backbone"], run["device"]["name"],
                              float(r["latency_p50_ms"]), float(r["accuracy"]), r["parameters"], r["flops"],
                              r["size_mb"], r["status"], flip, run["created"], run["id"], load)
            key = (p.device, p.name, flip)
            if key not in latest or _quieter_or_newer(p, latest[key]):
                latest[key] = p
    return sorted(latest.values(), key=lambda p: (p.ms, -p.accuracy))


def bundle_names(paths: Iterable[str]) -> dict[str, str]:
    """{bundle path: label}: each path's folder name, or as many trailing parts as it takes to tell it from the
    other paths (``fer-edge convert RUN`` names every bundle ``RUN/bundle``: ``compact/bundle``, ``sepnet/bundle``)."""
    parts = {p: PurePosixPath(str(p).replace("\\", "/")).parts or (str(p),) for p in dict.fromkeys(paths)}
    names = {}
    for p, mine in parts.items():
        for n in range(1, len(mine) + 1):
            if not any(q != p and theirs[-n:] == mine[-n:] for q, theirs in parts.items()):
                break
        names[p] = "/".join(mine[-n:])
    return names


def front(points: list[BackbonePoint]) -> list[BackbonePoint]:
    """The points on their device's accuracy-vs-latency Pareto front (latencies of different machines are not
    compared), fastest first."""
    on: list[BackbonePoint] = []
    for device in dict.fromkeys(p.device for p in points):
        mine = [p for p in points if p.device == device]
        on += [p for p, f in zip(mine, pareto_front([(p.ms, p.accuracy) for p in mine]), strict=True) if f]
    return sorted(on, key=lambda p: (p.ms, -p.accuracy))


def plain(text: str) -> str:
    """Text from a results file drawn as is: matplotlib would read $...$ as math (and fail on a bad formula)."""
    return text.replace("$", r"\$")


def _millions(n: int | None) -> str:
    return "params n/a" if n is None else f"{n / 1e6:.2f}M"


def _place_labels(ax: Any, points: list[BackbonePoint], texts: list[str], radii: list[float],
                  fontsize: float = 7.0) -> None:
    """Annotate each point just outside its marker (``radii`` in points), trying offsets around it until the label
    overlaps no label placed before."""
    to_px = ax.transData.transform
    scale = ax.figure.dpi / 72.0
    placed: list[tuple[float, float, float, float]] = []
    for i in sorted(range(len(points)), key=lambda i: (-points[i].accuracy, points[i].ms)):
        side = radii[i] + 2
        offsets = [(dx, dy) for r in range(6) for dy in ((0,) if r == 0 else (-11 * r, 11 * r))
                   for dx in (side, -side)]
        x, y = to_px((points[i].ms, 100 * points[i].accuracy))
        w, h = 0.65 * fontsize * len(texts[i]) * scale, 1.2 * fontsize * scale
        for dx, dy in offsets:
            left = x + dx * scale - (w if dx < 0 else 0)
            box = (left, y + dy * scale, left + w, y + dy * scale + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        arrow = {"arrowstyle": "-", "color": "grey", "linewidth": 0.5} if dy else None
        ax.annotate(texts[i], (points[i].ms, 100 * points[i].accuracy), xytext=(dx, dy), textcoords="offset points",
                    fontsize=fontsize, va="bottom", ha="left" if dx > 0 else "right", arrowprops=arrow)


def figure(points: list[BackbonePoint], title: str = "") -> Any:
    """The picture as a matplotlib Figure (Agg canvas, no pyplot state)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(10.0, 5.5), dpi=110)
    ax = fig.add_subplot()
    known = [p.parameters for p in points if p.parameters]
    biggest = max(known) if known else 1
    sizes = [40 + 1000 * math.sqrt((p.parameters or 0) / biggest) for p in points]
    xs, ys = [p.ms for p in points], [100 * p.accuracy for p in points]
    best = front(points)
    devices = list(dict.fromkeys(p.device for p in points))
    many = len(devices) > 1
    for k, device in enumerate(devices):
        idx = [i for i, p in enumerate(points) if p.device == device]
        marker = MARKERS[k % len(MARKERS)]
        ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], s=[sizes[i] for i in idx], marker=marker,
                   c=["tab:orange" if points[i].status != "passed" else "tab:blue" for i in idx], alpha=0.45,
                   edgecolors="black", linewidths=0.5)
        if many:  # a small stand-in for the legend: the points' own areas vary
            ax.scatter([], [], s=40, marker=marker, c="grey", label=plain(device))
        mine = [p for p in best if p.device == device]
        ax.step([p.ms for p in mine], [100 * p.accuracy for p in mine], where="post", linestyle="--",
                color=FRONT_COLOURS[k % len(FRONT_COLOURS)] if many else "red", linewidth=1.2,
                label=plain(f"Pareto front ({device})") if many else "Pareto front")
        ax.scatter([p.ms for p in mine], [100 * p.accuracy for p in mine],
                   s=[sizes[points.index(p)] + 80 for p in mine], marker=marker, facecolors="none", edgecolors="red",
                   linewidths=1.2)
    if max(xs) / max(min(xs), 1e-9) > 8:
        ax.set_xscale("log")
        ticks = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(ticks)
        ax.xaxis.set_minor_formatter(ticks)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlim(min(xs) / 1.25, max(xs) * 1.25)
    else:
        span = max(xs) - min(xs) or max(xs) or 1.0
        ax.set_xlim(min(xs) - 0.1 * span, max(xs) + 0.2 * span)
    yspan = max(ys) - min(ys) or 1.0
    ax.set_ylim(min(ys) - 0.1 * yspan - 1, max(ys) + 0.15 * yspan + 1)
    _place_labels(ax, points, [str(i) for i in range(1, len(points) + 1)], [math.sqrt(a) / 2 for a in sizes], 8)
    key = [f"{i}  {plain(p.name)}" + (f" on {plain(p.device)}" if many else "") + (" flip TTA" if p.flip_tta else "")
           + (f" ({p.status})" if p.status != "passed" else "")
           + f"\n    {_millions(p.parameters)}, {100 * p.accuracy:.2f}%, {p.ms:.2f} ms" + ("  *" if p in best else "")
           for i, p in enumerate(points, 1)]
    note = "\n\n* on the front" + (" of its device" if many else "")
    ax.text(1.02, 1.0, "\n".join(key) + note, transform=ax.transAxes, va="top", ha="left", fontsize=7,
            family="monospace")
    ax.set_title(plain(title) if title else f"Backbones on {plain(', '.join(devices))}: int8 TFLite, batch 1, "
                 "1 thread (point area: parameters)", fontsize=10)
    ax.set_xlabel("int8 ms per face (p50, batch 1, 1 thread)")
    ax.set_ylabel("accuracy % (int8)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def png(doc: dict[str, Any], title: str = "") -> tuple[bytes | None, str]:
    """(PNG bytes, "") or (None, why there is no picture)."""
    if importlib.util.find_spec("matplotlib") is None:
        return None, 'matplotlib is not installed (pip install -e ".[train]"): no Pareto picture'
    buf = io.BytesIO()
    try:  # a picture that cannot be drawn must not cost the report beside it
        points = backbone_points(doc)
        if not points:
            return None, ("no int8 TFLite row on LiteRT at 1 thread with both accuracy and latency "
                          "(bench with labelled --data, --threads 1 and the int8 TFLite artifact)")
        figure(points, title).savefig(buf, format="png")
    except Exception as exc:
        return None, f"it could not be drawn ({type(exc).__name__}: {str(exc)[:160]})"
    return buf.getvalue(), ""


def png_path(report: str | Path) -> Path:
    """Where the picture goes beside a report file: ``compare.html`` -> ``compare-pareto.png``."""
    report = Path(report)
    return report.with_name(f"{report.stem}-pareto.png")


def write_png(doc: dict[str, Any], target: str | Path, title: str = "") -> tuple[Path | None, str]:
    """Write the picture atomically to ``target``: (path, "") or (None, why not; a picture an earlier run left at
    ``target`` is removed, so none of other runs stands beside the new report)."""
    data, why = png(doc, title)
    if data is None:
        Path(target).unlink(missing_ok=True)
        return None, why
    return atomic.write_bytes(target, data), ""
