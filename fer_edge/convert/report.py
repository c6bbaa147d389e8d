"""The conversion report: one record per artifact (report.json) rendered as a text table (CLI) and report.md."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fer_edge.convert.bundler import ConvertResult, Row

COLUMNS = ("format", "precision", "size MB", "% fp32", "accuracy", "delta", "agreement", "status", "export s")


def to_dict(result: ConvertResult) -> dict[str, Any]:
    m = result.manifest
    return {
        "name": m.name, "created": m.provenance.get("created"), "source": m.provenance.get("source"),
        "keras_accuracy": result.keras_accuracy, "evaluation": m.evaluation, "max_drop": result.max_drop_points,
        "seconds": round(result.seconds, 1), "ok": result.ok, "notes": list(result.notes),
        "determinism": determinism(result.rows),
        "rows": [{**asdict(r), "size_mb": None if r.bytes is None else r.bytes / 1e6} for r in result.rows],
    }


def determinism(rows: tuple[Row, ...] | list[Row]) -> dict[str, str]:
    """Per format: 'byte-identical', 'differs (precisions)' or 'not checked'."""
    out: dict[str, str] = {}
    for fmt in dict.fromkeys(r.format for r in rows):
        checked = [r for r in rows if r.format == fmt and r.deterministic is not None]
        if not checked:
            out[fmt] = "not checked (fer-edge convert --check-determinism)"
            continue
        differ = [r.precision for r in checked if not r.deterministic]
        out[fmt] = f"differs on repeat: {', '.join(differ)}" if differ else \
            f"byte-identical on repeat ({', '.join(r.precision for r in checked)})"
    return out


def cells(r: Row) -> list[str]:
    def pct(v: float | None, signed: bool = False) -> str:
        return "-" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")

    return [r.format, r.precision, "-" if r.bytes is None else f"{r.bytes / 1e6:.2f}",
            "-" if r.size_pct is None else f"{r.size_pct:.0f}%",
            "-" if r.accuracy is None else f"{100 * r.accuracy:.2f}%", pct(r.delta, True),
            "-" if r.agreement is None else f"{100 * r.agreement:.2f}%", r.status,
            "-" if r.export_s is None else f"{r.export_s:.1f}"]


def table(result: ConvertResult) -> str:
    """Fixed-width table plus one line per artifact that did not pass."""
    rows = [list(COLUMNS), *(cells(r) for r in result.rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    left = {0, 1, 7}

    def line(row: list[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    lines = [line(row) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ev = result.manifest.evaluation
    head = (f"{result.manifest.name}: Keras fp32 {100 * result.keras_accuracy:.2f}% on {ev.get('n')} "
            f"{ev.get('dataset')} {ev.get('split') or ''} faces; delta in points; {result.seconds:.0f} s")
    tail = [f"  {r.key}: {r.reason}" for r in result.rows if r.reason]
    if any(r.deterministic is not None for r in result.rows):
        tail += [f"  determinism: {k} {v}" for k, v in determinism(result.rows).items()]
    return "\n".join([head, *lines, *tail, *(f"  note: {n}" for n in result.notes)])


def markdown(result: ConvertResult) -> str:
    m, ev = result.manifest, result.manifest.evaluation
    calib = ev.get("calibration") or {}
    out = [f"# Conversion report: {m.name}", "",
           f"- source: `{m.provenance.get('source')}`",
           f"- evaluation: {ev.get('n')} faces of {ev.get('dataset')} split `{ev.get('split')}` "
           f"({ev.get('protocol')}); Keras fp32 accuracy {100 * result.keras_accuracy:.2f}%",
           f"- calibration: {calib.get('n', '-')} faces of {calib.get('dataset', '-')} split "
           f"`{calib.get('split', '-')}`" if calib else "- calibration: none needed",
           f"- an artifact is marked degraded when it loses more than {ev.get('degraded_above_points')} points "
           f"({ev.get('limit')})",
           f"- conversion time: {result.seconds:.0f} s", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(cells(r)) + " |" for r in result.rows]
    reasons = [f"- `{r.key}`: {r.reason}" for r in result.rows if r.reason]
    tries = [f"- `{r.key}`: " + "; ".join(_attempt_text(a) for a in r.attempts) for r in result.rows if r.attempts]
    out += ["", "## Status reasons", "", *reasons] if reasons else []
    out += ["", "## Attempts under --max-drop", "", *tries] if tries else []
    out += ["", "## Determinism", "", "Each artifact exported a second time in the same process (after other "
            "exports, so per-process name counters have moved on) and compared byte for byte, companions included.",
            ""]
    out += [f"- {k}: {v}" for k, v in determinism(result.rows).items()]
    if result.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in result.notes)]
    return "\n".join(out) + "\n"


def _attempt_text(a: dict[str, Any]) -> str:
    how = ", ".join(f"{k}={v}" for k, v in a.items() if k not in ("status", "delta", "reason")) or "default"
    delta = "" if a.get("delta") is None else f" {a['delta']:+.2f}"
    return f"{how}: {a['status']}{delta}"
