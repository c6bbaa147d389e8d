"""`fer-edge bench` and `fer-edge report`: parse, call the library, print."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click

from fer_edge import atomic
from fer_edge.bundle import PRECISIONS
from fer_edge.dataroot import data_option
from fer_edge.runtime.backends import BACKENDS


def _formats() -> list[str]:
    return list(dict.fromkeys(f for _, cls in BACKENDS.items() for f in cls.formats))


class CommaList(click.ParamType):
    """``a,b,c`` -> tuple, each item cast and (optionally) checked against the valid choices."""

    name = "list"

    def __init__(self, choices: list[str] | None = None, cast: type = str) -> None:
        self.choices = choices
        self.cast = cast

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        out = []
        for item in items:
            if self.choices is not None and item not in self.choices:
                near = difflib.get_close_matches(item, self.choices, n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                self.fail(f"{item!r} is not one of {', '.join(self.choices)}.{hint}", param, ctx)
            try:
                out.append(self.cast(item))
            except ValueError:
                self.fail(f"{item!r} is not a valid {self.cast.__name__}", param, ctx)
        if not out:
            self.fail("empty list", param, ctx)
        return tuple(out)


def _default_threads() -> str:
    from fer_edge.benchmarks.sysinfo import usable_cores

    return ",".join(str(t) for t in dict.fromkeys((1, usable_cores())))


@click.command("bench")
@click.argument("bundles", nargs=-1, required=True)
@click.option("--data", callback=data_option, metavar="PATH|NAME", help="Faces for the accuracy columns: any "
              "dataset folder `fer-edge data` reads (FERPlus: its labelled test split), or its name under "
              "$FER_EDGE_DATA or ../shared/data (ferplus). Without it, latency only.")
@click.option("--formats", type=CommaList(_formats()), help="Artifact formats to include (default: all).")
@click.option("--precisions", type=CommaList(list(PRECISIONS)), help="Precisions to include (default: all).")
@click.option("--backends", type=CommaList(BACKENDS.names()), help="Backends (default: every installed one).")
@click.option("--threads", type=CommaList(cast=int), default=_default_threads, show_default="1 and all cores",
              help="Thread counts, one row each.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed calls before timing.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed batch-1 calls per round (at least).")
@click.option("--rounds", type=int, default=3, show_default=True, help="Latency rounds, for run-to-run spread.")
@click.option("--min-time", "min_time_s", type=float, default=0.5, show_default=True,
              help="Seconds each latency round lasts at least (fast models get more calls).")
@click.option("--batch-sizes", type=CommaList(cast=int), default="1,8,32", show_default=True,
              help="Batch sizes tried for throughput (the best is reported).")
@click.option("--limit", type=int, help="At most N evaluation faces (a fixed random subset).")
@click.option("--max-drop", type=float, default=2.0, show_default=True,
              help="Accuracy drop vs fp32 (percentage points) above which a row is 'degraded'.")
@click.option("--timeout", "timeout_s", type=float, default=600, show_default=True, help="Seconds per row.")
@click.option("--device-name", help="Name of this device in the results (default: the board or CPU model).")
@click.option("--pipeline", type=click.Path(), help="Video (or any `fer-edge run` source) to also time end to end.")
@click.option("--pipeline-frames", type=int, default=300, show_default=True, help="Frames for --pipeline.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench-results", show_default=True,
              help="Folder for results.json, results.csv, report.md, report.html.")
@click.option("--flip-tta", is_flag=True, help="Classify each face and its mirror image, averaged (2 inferences).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def bench(bundles: tuple[str, ...], data: str | None, out_dir: str, quiet: bool, max_drop: float,
          **options: Any) -> None:
    """Size, speed and accuracy lost of every artifact of BUNDLE... on this machine.

    The results are always written; the exit is non-zero when any measurement failed (a format that no backend
    installed here runs is listed as "skipped (no backend)" with the extra to install, not counted).

    \b
    fer-edge bench runs/compact/bundle --data ../shared/data/ferplus
    fer-edge bench B1 B2 --formats tflite,onnx --threads 1,4 --out results/pi5
    """
    from fer_edge.benchmarks.outputs import write_outputs
    from fer_edge.benchmarks.render import console_table
    from fer_edge.benchmarks.runner import BenchOptions, failures, run_bench
    from fer_edge.errors import FerEdgeError

    opts = BenchOptions(max_drop_points=max_drop, **options)
    doc = run_bench(list(bundles), data, opts, echo=(lambda s: None) if quiet else click.echo)
    paths = write_outputs(doc, out_dir)
    click.echo(console_table(doc))
    run = doc["runs"][0]
    click.echo(f"{len(run['rows'])} rows in {run['wall_s']:.0f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    failed = failures(doc)
    if failed:  # the results are written, but a run with failures must not look like a success
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise FerEdgeError(f"{len(failed)} of {len(run['rows']) + len(run['pipeline'])} measurements failed: "
                           f"{failed[0]}{more}")


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", type=click.Path(dir_okay=False), default="compare.html", show_default=True,
              help="Output file; its suffix picks the kind: .html, .md, .csv or .json (merged results).")
@click.option("--title", default="fer-edge benchmark comparison", show_default=True)
def report(results: tuple[str, ...], out: str, title: str) -> None:
    """Merge results.json files (from several runs or devices) into one comparison.

    With an .html or .md report, the backbones' Pareto picture (int8 TFLite accuracy vs ms per face at batch 1,
    1 thread) is also written beside it: compare.html -> compare-pareto.png.

    \b
    fer-edge report results/pi5 results/orin results/laptop --out compare.html
    """
    from fer_edge.benchmarks import results as res
    from fer_edge.benchmarks.render import console_table, markdown
    from fer_edge.redact import redact_all

    doc = redact_all(res.merge([res.load(p) for p in results]))  # results from older versions may hold credentials
    suffix = Path(out).suffix.lower()
    if suffix == ".html":
        from fer_edge.benchmarks.html import html_report

        text = html_report(doc, title)
    elif suffix == ".md":
        text = markdown(doc)
    elif suffix == ".csv":
        text = res.to_csv(doc)
    elif suffix == ".json":
        atomic.write_json(out, doc)
        text = None
    else:
        raise click.BadParameter(f"unknown report kind {suffix or '(no suffix)'}; use .html, .md, .csv or .json",
                                 param_hint="--out")
    if text is not None:
        atomic.write_text(out, text)
    click.echo(console_table(doc))
    click.echo(f"{len(doc['runs'])} run(s) from {len(results)} file(s) -> {out}")
    if suffix in (".html", ".md"):
        from fer_edge.benchmarks.pareto import png_path, write_png

        picture, why = write_png(doc, png_path(out), title)
        click.echo(f"Pareto picture -> {picture}" if picture else f"no Pareto picture: {why}")
