"""Report plots as base64 PNG (matplotlib's Agg canvas, no pyplot state): the backbones' int8 Pareto picture
(``pareto``), accuracy vs latency of every row with the Pareto front, size vs accuracy, per-class F1 of fp32 vs
int8, latency distributions. A plot without data, or without matplotlib installed, comes back with a note saying
why instead of an image."""

from __future__ import annotations

import base64
import importlib.util
import io
from dataclasses import dataclass
from typing import Any

from fer_edge.benchmarks.pareto import CAPTION as PARETO_CAPTION
from fer_edge.benchmarks.pareto import plain
from fer_edge.benchmarks.results import pareto_front

MARKERS = "osD^vP*Xh"
MAX_BOXES = 24


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    caption: str
    png: str | None  # base64 PNG, or None with ``note`` saying why
    note: str = ""


def _label(run: dict[str, Any], row: dict[str, Any], many: bool, model: bool = False) -> str:
    s = f"{row['format']}/{row['precision']} {row['backend']} x{row['threads']}"
    if model:
        s = f"{row['model']} {s}"
    return plain(f"{run['device']['name']}: {s}" if many else s)  # names from a results file: no mathtext


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float = 7.5, h: float = 4.5) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def series(doc: dict[str, Any], xkey: str) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Rows with an accuracy and an ``xkey`` value, grouped by device: runs of several bundles made on one device
    form one series (and one Pareto front), so backbones are compared with each other on that device."""
    out: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for run in doc["runs"]:
        for r in run["rows"]:
            if r["accuracy"] is not None and r[xkey] is not None:
                out.setdefault(run["device"]["name"], []).append((run, r))
    return out


def _scatter(doc: dict[str, Any], xkey: str, xlabel: str, front: bool) -> Any | None:
    groups = series(doc, xkey)
    many = len(groups) > 1
    fig = _figure()
    ax = fig.add_subplot()
    drawn = False
    for k, (device, pts) in enumerate(groups.items()):
        drawn = True
        models = len({r["model"] for _, r in pts}) > 1
        xs, ys = [r[xkey] for _, r in pts], [100 * r["accuracy"] for _, r in pts]
        ax.scatter(xs, ys, marker=MARKERS[k % len(MARKERS)], label=plain(device), alpha=0.8)
        spots: dict[tuple[float, float], list[str]] = {}
        for (run, r), x, y in zip(pts, xs, ys, strict=True):  # one label per spot: rows often coincide
            spots.setdefault((round(x, 4), round(y, 3)), []).append(_label(run, r, False, models))
        for (x, y), names in spots.items():
            more = f" (+{len(names) - 1})" if len(names) > 1 else ""
            ax.annotate(names[0] + more, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if front:
            flags = pareto_front(list(zip(xs, ys, strict=True)))
            fx = sorted((x, y) for x, y, f in zip(xs, ys, flags, strict=True) if f)
            ax.step([p[0] for p in fx], [p[1] for p in fx], where="post", linestyle="--", linewidth=1.2,
                    label=plain(f"Pareto front ({device})") if many else "Pareto front")
            ax.scatter([p[0] for p in fx], [p[1] for p in fx], s=120, facecolors="none", edgecolors="red")
    if not drawn:
        return None
    if xkey == "latency_p50_ms":
        lo = min(r[xkey] for run in doc["runs"] for r in run["rows"] if r[xkey])
        hi = max(r[xkey] for run in doc["runs"] for r in run["rows"] if r[xkey])
        if hi / max(lo, 1e-9) > 20:
            ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _per_class(doc: dict[str, Any]) -> Any | None:
    pairs = []
    for run in doc["runs"]:
        for model in dict.fromkeys(r["model"] for r in run["rows"]):
            rows = [r for r in run["rows"] if r["model"] == model and r["per_class_f1"]]
            fp32 = next((r for r in rows if r["precision"] == "fp32"), None)
            int8 = [r for r in rows if r["precision"].startswith("int8")]
            int8.sort(key=lambda r: (r["format"] != (fp32 or {}).get("format"), r["backend"]))
            if fp32 and int8:
                pairs.append((run, model, fp32, int8[0]))
    if not pairs:
        return None
    fig = _figure(7.5, 2.6 * len(pairs) + 0.8)
    for i, (run, model, fp32, int8) in enumerate(pairs, 1):
        ax = fig.add_subplot(len(pairs), 1, i)
        classes = list(fp32["per_class_f1"])
        xs = range(len(classes))
        for off, r in ((-0.2, fp32), (0.2, int8)):
            vals = [100 * (r["per_class_f1"].get(c) or 0.0) for c in classes]
            name = plain(f"{r['format']}/{r['precision']} {r['backend']}")
            ax.bar([x + off for x in xs], vals, width=0.4, label=name)
        ax.set_xticks(list(xs), [plain(c) for c in classes], fontsize=7, rotation=20)
        ax.set_ylabel("F1 %")
        ax.set_title(plain(f"{run['device']['name']}: {model}" if len(doc["runs"]) > 1 else model), fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _distributions(doc: dict[str, Any]) -> Any | None:
    many = len(doc["runs"]) > 1
    items = [(_label(run, r, many), r["latency_samples"]) for run in doc["runs"] for r in run["rows"]
             if r["latency_samples"]][:MAX_BOXES]
    if not items:
        return None
    fig = _figure(7.5, 0.3 * len(items) + 1.2)
    ax = fig.add_subplot()
    ax.boxplot([s for _, s in items], vert=False, showfliers=True, flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(items) + 1), [n for n, _ in items], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency at batch 1 (ms)")
    ax.set_xscale("log")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _backbones(doc: dict[str, Any]) -> Any | None:
    from fer_edge.benchmarks.pareto import backbone_points, figure

    points = backbone_points(doc)
    return figure(points) if points else None


SPECS = (
    ("backbone-pareto", "Backbones: int8 accuracy vs ms per face", PARETO_CAPTION, _backbones,
     "no int8 TFLite row on LiteRT at 1 thread with accuracy and latency"),
    ("accuracy-latency", "Accuracy vs latency", "Median latency at batch 1 against accuracy; the dashed line and "
     "red rings mark the Pareto front (nothing else is both faster and more accurate).",
     lambda d: _scatter(d, "latency_p50_ms", "p50 latency at batch 1 (ms)", True),
     "no row has both accuracy and latency (bench with labelled --data)"),
    ("size-accuracy", "Size vs accuracy", "Artifact size on disk (MB, 10^6 bytes) against accuracy.",
     lambda d: _scatter(d, "size_mb", "size (MB)", False), "no row has both a size and accuracy"),
    ("per-class-f1", "Per-class F1: fp32 vs int8", "F1 of each class for the fp32 reference and an int8 artifact.",
     _per_class, "needs an fp32 and an int8 row of the same model with accuracy"),
    ("latency-distribution", "Latency distributions", "Every timed call at batch 1 (all rounds), per row.",
     _distributions, "no row has latency samples"),
)


def plots(doc: dict[str, Any]) -> list[Plot]:
    """Every report plot, each as a PNG or a note saying why it is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        return [Plot(i, t, c, None, "matplotlib is not installed (pip install matplotlib): plots left out")
                for i, t, c, _, _ in SPECS]
    out = []
    for pid, title, caption, make, why in SPECS:
        try:
            fig = make(doc)
            picture = _png(fig) if fig is not None else None
        except Exception as exc:  # one plot that cannot be drawn must not cost the whole report
            picture, why = None, f"could not be drawn ({type(exc).__name__}: {str(exc)[:160]})"
        out.append(Plot(pid, title, caption, picture, "" if picture is not None else why))
    return out
