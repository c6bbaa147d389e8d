"""`fer-edge convert` and `fer-edge bundle inspect`: parse, call one library function, print."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import click

from fer_edge.bundle import PRECISIONS, Bundle, load_bundle
from fer_edge.cli import UserError
from fer_edge.convert.context import CALIB_METHODS
from fer_edge.convert.formats import FORMAT_NAMES
from fer_edge.errors import FerEdgeError


def _csv(value: str | None, valid: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    if items == ("all",):
        return valid
    for it in items:
        if it not in valid:
            near = difflib.get_close_matches(it, valid, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise UserError(f"unknown {what} {it!r}; choose from {', '.join(valid)} (or all).{hint}")
    return items


@click.command("convert")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Bundle folder to write [default: "
              "RUN/bundle for a run folder, MODEL-bundle beside a model file].")
@click.option("--formats", help=f"Comma list of {', '.join(FORMAT_NAMES)} [default: every installed one].")
@click.option("--int8", is_flag=True, help="Add full-integer int8 artifacts (calibrated on real faces).")
@click.option("--fp16", is_flag=True, help="Add float16 artifacts.")
@click.option("--precisions", help=f"Comma list of {', '.join(PRECISIONS)} or 'all' (fp32 is always built).")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration face dataset [default: the run's "
              "dataset, else FERPlus under $FER_EDGE_DATA or ../shared/data]; its validation split is used.")
@click.option("--calib-size", type=click.IntRange(1), default=300, show_default=True,
              help="Calibration faces, class-balanced.")
@click.option("--calib-method", type=click.Choice(CALIB_METHODS), default="minmax", show_default=True,
              help="ONNX Runtime calibration (TFLite and NNCF use their own min/max statistics).")
@click.option("--eval", "eval_path", type=click.Path(path_type=Path),
              help="Held-out labelled faces [default: the run's dataset, else FERPlus; its test split].")
@click.option("--eval-size", type=click.IntRange(1), help="Evaluate on a seeded random subset of this size.")
@click.option("--max-drop", type=click.FloatRange(0), help="Accuracy points an artifact may lose; fallbacks are "
              "tried past it and the exit code is 1 if they do not help.")
@click.option("--name", help="Bundle name [default: BACKBONE-DATASET].")
@click.option("--classes", help="Comma list of class names in output order, when the model has no run metadata.")
@click.option("--threads", type=click.IntRange(1), help="Threads for validation inference.")
@click.option("--check-determinism", is_flag=True, help="Export every artifact twice and compare bytes.")
def convert(source: Path, out: Path | None, formats: str | None, int8: bool, fp16: bool, precisions: str | None,
            calib: Path | None, calib_size: int, calib_method: str, eval_path: Path | None, eval_size: int | None,
            max_drop: float | None, name: str | None, classes: str | None, threads: int | None,
            check_determinism: bool) -> None:
    """Convert a .keras model or a training run folder into one bundle: TFLite, ONNX and OpenVINO artifacts,
    each validated through the runtime on held-out faces, with manifest.json and report.md.

    \b
    fer-edge convert runs/compact --int8 --out bundles/compact
    fer-edge convert model.keras --formats tflite --precisions all --max-drop 0.5 --out b
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fer_edge.convert.bundler import ConvertOptions
    from fer_edge.convert.bundler import convert as run
    from fer_edge.convert.report import table

    opts = ConvertOptions(
        formats=_csv(formats, FORMAT_NAMES, "format"), precisions=_csv(precisions, PRECISIONS, "precision") or (),
        int8=int8, fp16=fp16,
        calib=str(calib) if calib else None, calib_size=calib_size, calib_method=calib_method,
        eval=str(eval_path) if eval_path else None, eval_size=eval_size, max_drop_points=max_drop, name=name,
        classes=tuple(c.strip() for c in classes.split(",")) if classes else None, threads=threads,
        check_determinism=check_determinism)
    if out is None:
        out = source / "bundle" if source.is_dir() else source.with_name(f"{source.stem}-bundle")
    result = run(source, out, opts, progress=True)
    click.echo(table(result))
    click.echo(f"bundle: {result.bundle} (report.md inside)")
    if result.failed:
        raise UserError(f"{len(result.failed)} artifact(s) failed: {', '.join(r.key for r in result.failed)}"
                        " (reasons above)")
    if result.over_budget:
        raise UserError(f"--max-drop {max_drop}: {', '.join(r.key for r in result.over_budget)} still lose more "
                        "after every fallback")


@click.group("bundle")
def bundle() -> None:
    """Look inside bundles."""


@bundle.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print manifest.json as is.")
@click.option("--verify", is_flag=True, help="Check every artifact's sha256 against the manifest.")
def inspect(path: Path, as_json: bool, verify: bool) -> None:
    """Show a bundle's manifest: classes, input, and each artifact's precision, size, accuracy and status."""
    b = load_bundle(path)
    bad: list[str] = []
    checks: dict[str, str] = {}
    if verify:
        for a in b.manifest.artifacts:
            try:
                b.verify(a)
                checks[a.key] = "ok"
            except FerEdgeError as exc:
                checks[a.key] = "MISMATCH"
                bad.append(str(exc))
    if as_json:
        d = b.manifest.to_dict()
        if verify:
            d["verify"] = checks
        click.echo(json.dumps(d, indent=2))
    else:
        click.echo(describe(b, checks))
    if bad:
        raise UserError(bad[0] + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def describe(b: Bundle, checks: dict[str, str] | None = None) -> str:
    """Human-readable manifest."""
    m, s = b.manifest, b.manifest.input
    ev, prov = m.evaluation, m.provenance
    ref = ev.get("keras_accuracy")
    lines = [
        f"{m.name}  ({b.path})",
        f"  backbone    {m.backbone}, {m.parameters or '?'} parameters",
        f"  classes     {', '.join(m.classes)}",
        f"  input       {s.height}x{s.width}x{s.channels} {s.color} {s.layout}, x*{s.scale:.6g} - mean {list(s.mean)}"
        f" / std {list(s.std)}",
        f"  crop        face box grown by {m.crop.margin:g} x "
        + ("its longer side on each side, squared" if m.crop.square else "each side's length, not squared"),
    ]
    if ev:
        acc = f"{100 * ref:.2f}%" if isinstance(ref, float) else "?"
        lines.append(f"  evaluation  {ev.get('n')} faces of {ev.get('dataset')} {ev.get('split') or ''}, "
                     f"Keras fp32 {acc}")
    if prov:
        lines.append(f"  source      {prov.get('source')}  ({prov.get('created', '')})")
    head = ("format", "precision", "file", "MB", "in/out", "quant in", "accuracy", "delta", "agree", "status")
    rows = [list(head)]
    for a in m.artifacts:
        delta = "-" if a.accuracy is None or not isinstance(ref, float) else f"{100 * (a.accuracy - ref):+.2f}"
        quant = "-" if not a.input_quant else f"{a.input_quant['scale']:.4g}/{a.input_quant['zero_point']}"
        status = a.status + (f" [{checks[a.key]}]" if checks and a.key in checks else "")
        rows.append([a.format, a.precision, a.file, f"{a.total_bytes / 1e6:.2f}", f"{a.input_dtype}/{a.output_dtype}",
                     quant, "-" if a.accuracy is None else f"{100 * a.accuracy:.2f}%", delta,
                     "-" if a.agreement is None else f"{100 * a.agreement:.2f}%", status])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines.append("")
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += [f"  {a.key}: {a.status_reason}" for a in m.artifacts if a.status_reason]
    lines += [f"  {f['format']}:{f['precision']}: failed, {f['reason']}" for f in ev.get("failed", [])]
    return "\n".join(lines)
