"""Every output file of a benchmark run (results.json, .csv, report.md, report.html, pareto.png), each written
atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_edge import atomic
from fer_edge.benchmarks import results
from fer_edge.benchmarks.render import markdown


def write_outputs(doc: dict[str, Any], out_dir: str | Path, html: bool = True) -> dict[str, Path]:
    """results.json (validated), results.csv, report.md, report.html and pareto.png (when it can be drawn) in
    ``out_dir``, each written atomically."""
    results.validate(doc)
    out = Path(out_dir)
    paths = {"json": atomic.write_json(out / "results.json", doc),
             "csv": atomic.write_text(out / "results.csv", results.to_csv(doc)),
             "md": atomic.write_text(out / "report.md", markdown(doc))}
    if html:
        from fer_edge.benchmarks.html import html_report  # matplotlib: only when the HTML report is asked for
        from fer_edge.benchmarks.pareto import write_png

        paths["html"] = atomic.write_text(out / "report.html", html_report(doc))
        picture, _ = write_png(doc, out / "pareto.png")  # None (no matplotlib, no int8 row): report.html says why
        if picture:
            paths["png"] = picture
    return paths
