"""report.html: one self-contained page (inline CSS, plots as data: PNGs), for one run or several devices."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Any

from fer_edge.benchmarks.plots import plots
from fer_edge.benchmarks.render import cost_notes, device_lines, fmt, pipeline_line, row_name, table_cells

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:nth-child(-n+6){text-align:left}
table.kv td{text-align:left}tr.skipped td{color:#777}
tr.failed td{background:#fde8e8}tr.degraded td{background:#fff6dc}tr.pareto td:first-child{font-weight:bold}
figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}figure img{max-width:100%}
figcaption{font-size:12px;color:#555;max-width:700px}.note{color:#a00;font-size:13px}
"""


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None, cls: str = "") -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = []
    for i, row in enumerate(rows):
        tr = f' class="{escape(classes[i])}"' if classes else ""
        body.append(f"<tr{tr}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _run_section(run: dict[str, Any]) -> str:
    d = run["device"]
    parts = [f'<section class="run" id="run-{escape(run["id"])}">',
             f"<h2>{escape(d['name'])} <small>{escape(run['created'])}</small></h2>",
             _table(["", ""], [[k, v] for k, v in device_lines(d)], cls="kv")]
    data = run["data"]
    parts.append(f"<p>Faces: {escape(str(data.get('faces')))} from {escape(str(data.get('dataset')))} "
                 f"({escape(str(data.get('split', 'n/a')))} split). {escape(data.get('note', ''))}</p>")
    head, cells = table_cells(run["rows"])
    classes = [r["status"] + (" pareto" if r["pareto"] else "") for r in run["rows"]]
    parts.append(_table(head, cells, classes, cls="rows"))
    parts.append("<p><small>* on the accuracy-vs-latency Pareto front; d acc pp: accuracy change vs the fp32 "
                 "reference; agree %: top-1 agreement with it; latency at batch 1, model only; cv %: coefficient "
                 "of variation of the per-round medians.</small></p>")
    notes = [f"{row_name(r)}: {r['status']}: {r['reason']}" for r in run["rows"] if r["reason"]]
    notes += cost_notes(run["rows"])
    notes += sorted({f"accuracy: {r['accuracy_note']}" for r in run["rows"] if r["accuracy_note"]})
    notes += run.get("notes", [])
    parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if run["pipeline"]:
        parts.append("<h3>End to end (pipeline) beside model-only latency</h3>")
        parts.append(_table(["model", "backend", "status", "result"], [
            [p["model"], f"{p.get('format', '-')}/{p.get('precision', '-')} {p.get('backend', '-')}", p["status"],
             pipeline_line(p) if p["status"] == "passed" else p["reason"]] for p in run["pipeline"]]))
    parts.append("</section>")
    return "\n".join(parts)


def _comparison(doc: dict[str, Any]) -> str:
    """Across devices: the same model/format/precision/backend/threads side by side (p50 ms and accuracy)."""
    keys = list(dict.fromkeys((r["model"], r["format"], r["precision"], r["backend"], r["threads"])
                              for run in doc["runs"] for r in run["rows"] if r["format"]))
    head = ["model", "format", "prec", "backend", "thr"]
    for run in doc["runs"]:
        head += [f"{run['device']['name']} p50 ms", f"{run['device']['name']} acc %"]
    rows = []
    for k in keys:
        cells = [k[0], k[1], k[2], k[3], str(k[4])]
        for run in doc["runs"]:
            r = next((r for r in run["rows"] if (r["model"], r["format"], r["precision"], r["backend"],
                                                   r["threads"]) == k), None)
            cells += [fmt(r and r["latency_p50_ms"], ".3f"), fmt(r and r["accuracy"], ".1f", 100)]
        rows.append(cells)
    return "<h2>Devices side by side</h2>" + _table(head, rows)


def html_report(doc: dict[str, Any], title: str = "fer-edge benchmark") -> str:
    """The whole page as a string."""
    figs = []
    for p in plots(doc):
        if p.png:
            figs.append(f'<figure id="fig-{p.id}"><img class="plot" id="plot-{p.id}" alt="{escape(p.title)}" '
                        f'src="data:image/png;base64,{p.png}"><figcaption><b>{escape(p.title)}.</b> '
                        f"{escape(p.caption)}</figcaption></figure>")
        else:
            figs.append(f'<p class="note" id="missing-{p.id}">{escape(p.title)}: {escape(p.note)}</p>')
    devices = ", ".join(dict.fromkeys(r["device"]["name"] for r in doc["runs"]))
    body = [f"<h1>{escape(title)}</h1>",
            f"<p>{len(doc['runs'])} run(s) on {escape(devices)}; generated "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} (results schema "
            f"{doc['schema_version']}).</p>",
            '<section id="plots">' + "\n".join(figs) + "</section>"]
    if len(doc["runs"]) > 1:
        body.append(_comparison(doc))
    body += [_run_section(run) for run in doc["runs"]]
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
