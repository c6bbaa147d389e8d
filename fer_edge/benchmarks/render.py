"""Results as text: the console table and report.md (``outputs.write_outputs`` writes the files)."""

from __future__ import annotations

from typing import Any

NA = "-"


def fmt(value: Any, spec: str = ".3g", scale: float = 1.0, na: str = NA) -> str:
    """A number formatted with ``spec`` after multiplying by ``scale``; ``na`` for None."""
    if value is None:
        return na
    if isinstance(value, (int, float)):
        return format(value * scale if scale != 1.0 else value, spec)
    return str(value)


def row_name(r: dict[str, Any]) -> str:
    """How a row is named in notes: model format/precision backend xthreads, or the bundle for a bundle failure."""
    if not r["format"]:
        return f"bundle {r['bundle']}"
    return f"{r['model']} {r['format']}/{r['precision']} {r['backend'] or '(no backend)'} x{r['threads']}"


def _count(n: int | None) -> str:
    if n is None:
        return NA
    return f"{n / 1e9:.2f}G" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


# (header, function of a row) for the console and markdown tables.
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("model", lambda r: r["model"]),
    ("format", lambda r: r["format"] or NA),
    ("prec", lambda r: r["precision"] or NA),
    ("backend", lambda r: r["backend"] or NA),
    ("thr", lambda r: str(r["threads"])),
    ("status", lambda r: r["status"] + (" *" if r["pareto"] else "")),
    ("MB", lambda r: fmt(r["size_mb"], ".3f")),
    ("params", lambda r: _count(r["parameters"])),
    ("FLOPs", lambda r: _count(r["flops"])),
    ("acc %", lambda r: fmt(r["accuracy"], ".1f", 100)),
    ("d acc pp", lambda r: fmt(r["accuracy_delta"], "+.1f", 100)),
    ("agree %", lambda r: fmt(r["agreement"], ".1f", 100)),
    ("F1 %", lambda r: fmt(r["macro_f1"], ".1f", 100)),
    ("p50 ms", lambda r: fmt(r["latency_p50_ms"], ".3f")),
    ("p90 ms", lambda r: fmt(r["latency_p90_ms"], ".3f")),
    ("p99 ms", lambda r: fmt(r["latency_p99_ms"], ".3f")),
    ("cv %", lambda r: fmt(r["round_cv"], ".1f", 100)),
    ("faces/s", lambda r: fmt(r["throughput_fps"], ".0f") + (f" @{r['best_batch']}" if r["best_batch"] else "")),
    ("load ms", lambda r: fmt(r["load_ms"], ".1f")),
    ("1st ms", lambda r: fmt(r["first_inference_ms"], ".2f")),
    ("RSS MB", lambda r: fmt(r["peak_rss_mb"], ".0f")),
    ("+RSS MB", lambda r: fmt(r["rss_delta_mb"], ".1f")),
)


def table_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    return [h for h, _ in COLUMNS], [[f(r) for _, f in COLUMNS] for r in rows]


def console_table(doc: dict[str, Any]) -> str:
    """Aligned plain-text table of every run's rows, failure reasons underneath."""
    out = []
    for run in doc["runs"]:
        d = run["device"]
        out.append(f"{d['name']}: {d['cpu']}, {d['usable_cores']} cores, {d['os']}, {d['python']}")
        head, cells = table_cells(run["rows"])
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        out += [f"  {row_name(r)}: {r['status']}: {r['reason']}" for r in run["rows"] if r["reason"]]
        out += [f"  note: {n}" for n in run.get("notes", [])]
        out += [f"  pipeline ({p['model']}): " + (pipeline_line(p) if p["status"] == "passed" else
                                                  f"failed: {p['reason']}") for p in run["pipeline"]]
    out.append("* = on the accuracy-vs-latency Pareto front; d acc = accuracy change vs the model's fp32 reference")
    return "\n".join(out)


def pipeline_line(p: dict[str, Any]) -> str:
    return (f"{fmt(p.get('fps'), '.1f')} FPS over {p.get('frames')} frames (ms: {_stage_text(p.get('stages_ms'))}); "
            f"model only p50 {fmt(p.get('model_only_p50_ms'), '.3f')} ms")


def cost_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Where each model's parameter count and FLOPs came from (or why they are missing)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows if r["format"]):
        r = next(r for r in rows if r["model"] == model and r["format"])
        out.append(f"{model}: parameters {fmt(r['parameters'], ',')} ({r['parameters_note']}); "
                   f"FLOPs {fmt(r['flops'], ',')} ({r['flops_note']})")
    return out


def _md_table(head: list[str], cells: list[list[str]]) -> list[str]:
    esc = [[c.replace("|", "\\|") for c in row] for row in cells]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in esc)]


def device_lines(d: dict[str, Any]) -> list[tuple[str, str]]:
    backends = ", ".join(f"{k} {v}" for k, v in d["backends"].items()) or "none"
    return [("device", d["name"] + (f" ({d['board']})" if d.get("board") else "")), ("CPU", d["cpu"]),
            ("cores", f"{d['cores']} ({d.get('usable_cores', d['cores'])} usable)"), ("arch", d["arch"]),
            ("CPU features", ", ".join(d.get("cpu_features") or []) or NA), ("OS", d["os"]),
            ("Python", d["python"]), ("backends", backends),
            ("load average", f"{d.get('load_average')} at start, {d.get('load_average_end')} at end"),
            *([("emulated", d["emulated"])] if d.get("emulated") else [])]


def _stage_text(stages: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {fmt(v.get('mean') if isinstance(v, dict) else v, '.2f')}"
                     for k, v in (stages or {}).items()) or NA


def _md_run(run: dict[str, Any]) -> list[str]:
    data = run["data"]
    out = [f"## {run['device']['name']} ({run['created']})", "",
           *_md_table(["", ""], [[k, v] for k, v in device_lines(run["device"])]), "",
           f"Faces: {data.get('faces')} from {data.get('dataset')} ({data.get('split', 'n/a')} split)"
           + (f"; {data['note']}" if data.get("note") else ""), "",
           *_md_table(*table_cells(run["rows"])), "",
           "`*` on the accuracy-vs-latency Pareto front. `d acc pp`: accuracy change vs the model's fp32 "
           "reference, `agree %`: top-1 agreement with it. Latency: batch 1, model only (quantize + invoke + "
           "dequantize), warm. `cv %`: coefficient of variation of the per-round medians.", ""]
    spread = [r for r in run["rows"] if r["round_p50_ms"]]
    if spread:
        cells = [[row_name(r), ", ".join(fmt(x, ".4f") for x in r["round_p50_ms"]), fmt(r["round_cv"], ".1f", 100),
                  fmt(r["round_range"], ".1f", 100)] for r in spread]
        out += ["### Run-to-run spread of the median latency", "",
                *_md_table(["row", "p50 per round (ms)", "cv %", "range %"], cells), ""]
    notes = [f"- {row_name(r)}: **{r['status']}**: {r['reason']}" for r in run["rows"] if r["reason"]]
    notes += [f"- {n}" for n in cost_notes(run["rows"])]
    notes += sorted({f"- accuracy: {r['accuracy_note']}" for r in run["rows"] if r["accuracy_note"]})
    notes += [f"- {n}" for n in run.get("notes", [])]
    if notes:
        out += ["### Notes", "", *notes, ""]
    if run["pipeline"]:
        cells = [[p["model"], str(p.get("source")), p["status"] + (f": {p['reason']}" if p["reason"] else ""),
                  fmt(p.get("fps"), ".1f"), str(p.get("frames", NA)), _stage_text(p.get("stages_ms")),
                  fmt(p.get("model_only_p50_ms"), ".3f")] for p in run["pipeline"]]
        head = ["model", "source", "status", "FPS", "frames", "per-stage ms", "model-only p50 ms"]
        out += ["### End to end (pipeline)", "", *_md_table(head, cells), ""]
    return out


def markdown(doc: dict[str, Any]) -> str:
    """report.md: per run, the device, the table, run-to-run spread, reasons and notes, pipeline numbers."""
    out = ["# fer-edge benchmark", ""]
    for run in doc["runs"]:
        out += _md_run(run)
    return "\n".join(out)
