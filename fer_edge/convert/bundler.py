"""convert(): a Keras model in, one self-describing bundle out. Each artifact is exported, validated through
the runtime and given a status; a failing one never stops the others; the bundle folder appears whole or
not at all (``fer_edge.atomic.atomic_dir``)."""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from dataclasses import InitVar, asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge import atomic
from fer_edge.bundle import MANIFEST, Artifact, Bundle, InputSpec, Manifest, sha256_file, validate
from fer_edge.convert import calibration as cal
from fer_edge.convert import diagnose, onnx, openvino, report, tflite  # noqa: F401  (register the toolchains)
from fer_edge.convert import validate as val
from fer_edge.convert.context import CALIB_METHODS, ExportContext, Exported
from fer_edge.convert.formats import ExportFormat, select
from fer_edge.convert.source import ModelSource, load_keras, open_source
from fer_edge.convert.toolchain import TOOLCHAINS, Toolchain
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.redact import portable

WORK_PREFIX = "fer-edge-convert-"  # + pid: work folders in the temp dir, swept by the next conversion once it died
TUNE_FACES = 1000  # labelled calibration-source faces for NNCF accuracy control
VERSIONED = ("fer-edge", "numpy", "tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime",
             "openvino", "nncf", "ai-edge-litert")


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that decides a conversion (saved in the manifest's provenance)."""

    formats: tuple[str, ...] | None = None       # None: every format whose toolchain is installed
    precisions: tuple[str, ...] = ()             # named explicitly; fp32 is always built
    int8: bool = False                           # add int8 (and int8_float_io) wherever a format has it
    fp16: bool = False                           # add fp16 wherever a format has it
    calib: str | None = None
    calib_size: int = 300
    calib_method: str = "minmax"
    eval: str | None = None
    eval_size: int | None = None
    max_drop_points: float | None = None         # fallbacks are tried and exit is non-zero past it
    tolerance: float = 1.0                       # points; the "degraded" line when --max-drop is not given
    name: str | None = None
    classes: tuple[str, ...] | None = None
    threads: int | None = None
    check_determinism: bool = False
    seed: int = 0
    max_drop: InitVar[float | None] = None       # the old spelling of max_drop_points (points)

    def __post_init__(self, max_drop: float | None) -> None:
        if max_drop is not None:
            object.__setattr__(self, "max_drop_points", max_drop)
        if self.calib_method not in CALIB_METHODS:
            raise FerEdgeError(f"unknown calibration method {self.calib_method!r}; choose {', '.join(CALIB_METHODS)}")
        if self.calib_size < 1 or (self.eval_size is not None and self.eval_size < 1):
            raise FerEdgeError("--calib-size and --eval-size must be at least 1")


@dataclass(frozen=True)
class Row:
    """The outcome for one format x precision."""

    format: str
    precision: str
    status: str
    reason: str = ""
    file: str | None = None
    bytes: int | None = None
    size_pct: float | None = None               # of the same format's fp32 artifact
    accuracy: float | None = None
    delta: float | None = None                  # points vs the Keras model
    agreement: float | None = None
    export_s: float | None = None
    eval_s: float | None = None
    deterministic: bool | None = None           # None: not checked
    attempts: tuple[dict[str, Any], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.format}:{self.precision}"


@dataclass(frozen=True)
class ConvertResult:
    bundle: Path
    manifest: Manifest
    rows: tuple[Row, ...]
    keras_accuracy: float
    seconds: float
    notes: tuple[str, ...] = ()
    max_drop_points: float | None = None

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]

    @property
    def over_budget(self) -> list[Row]:
        return [r for r in self.rows if r.status == "degraded"] if self.max_drop_points is not None else []

    @property
    def ok(self) -> bool:
        return not self.failed and not self.over_budget


@dataclass
class _Job:
    """Mutable state of one conversion run (kept out of the public results)."""

    source: ModelSource
    opts: ConvertOptions
    ctx: ExportContext
    faces: np.ndarray
    labels: np.ndarray
    ref: np.ndarray
    bundle_dir: Path
    base: Manifest
    rows: list[Row] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)


def convert(source: str | Path, out: str | Path, opts: ConvertOptions | None = None,
            progress: bool = False) -> ConvertResult:
    """Convert the Keras model at ``source`` (a .keras file or a run folder) into a bundle folder ``out``."""
    from tqdm import tqdm

    t_start = time.time()
    opts = opts or ConvertOptions()
    out = Path(out)
    _check_out(out)
    src = open_source(source)
    groups = tuple(g for g, on in (("int8", opts.int8), ("fp16", opts.fp16)) if on)
    entries, notes = select(opts.formats, opts.precisions, groups)
    bar = tqdm(total=len(entries) + 2, desc="loading", disable=None if progress else True, leave=False, unit="step")
    try:
        with diagnose.quiet():
            model, removed = load_keras(src)
        classes = src.classes(int(model.output_shape[-1]), opts.classes)
        spec = src.input_spec(model)
        if removed:
            notes.append(f"augmentation layers removed before export: {', '.join(removed)}")
        ev, calib, tune = _data(src, opts, classes, spec, any(e.calibration for e in entries), notes)
        bar.update(1)
        bar.set_description("keras reference")
        ref = val.keras_predict(model, spec, ev.faces)
        keras_acc = float(np.mean(ref.argmax(1) == ev.labels))
        bar.update(1)
        backbone = src.backbone(model)
        train_ds = src.dataset_name or (ev.dataset if opts.eval is None else None)
        name = opts.name or "-".join(x for x in (backbone, train_ds) if x)
        evaluation = {**ev.describe(), "keras_accuracy": keras_acc, "degraded_above_points": _limit(opts),
                      "limit": "--max-drop" if opts.max_drop_points is not None else "the default tolerance",
                      "calibration": calib[1] or None}
        base = Manifest(name=name, backbone=backbone, classes=classes, input=spec,
                        parameters=int(model.count_params()), evaluation=evaluation, crop=src.crop)
        atomic.sweep_temp_root(WORK_PREFIX)  # work folders of killed conversions (hidden ones beside --out: atomic_dir)
        with tempfile.TemporaryDirectory(prefix=atomic.temp_dir_prefix(WORK_PREFIX)) as work, \
                atomic.atomic_dir(out) as tmp:
            ctx = ExportContext(model=model, spec=spec, classes=classes, workdir=Path(work), calib=calib[0],
                                calib_info=calib[1], calib_method=opts.calib_method,
                                max_drop_points=opts.max_drop_points, tune=tune, name=name)
            job = _Job(src, opts, ctx, ev.faces, ev.labels, ref, tmp, base)
            for entry in entries:
                bar.set_description(entry.key)
                _build(job, entry)
                bar.update(1)
            bar.close()
            rows = _with_sizes(job.rows)
            if not job.artifacts:
                why = "; ".join(f"{r.key}: {r.reason}" for r in rows)
                raise ModelError(f"no artifact could be built ({why[:400]})")
            failed = [{"format": r.format, "precision": r.precision, "reason": r.reason}
                      for r in rows if r.status == "failed" and r.file is None]
            # a bundle is copied to other machines: no absolute path of this one in it (base names instead)
            manifest = replace(
                base, artifacts=tuple(replace(a, options=portable(a.options)) for a in job.artifacts),
                evaluation=portable({**evaluation, "failed": failed, "notes": notes}),
                provenance=portable({**src.provenance(),
                                     "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     "options": _jsonable(asdict(opts)), "removed_layers": removed,
                                     "versions": versions()}))
            result = ConvertResult(out, manifest, tuple(rows), keras_acc, time.time() - t_start, tuple(notes),
                                   opts.max_drop_points)
            _write(tmp, result)
    finally:
        bar.close()
    return result


def _data(src: ModelSource, opts: ConvertOptions, classes: tuple[str, ...], spec: InputSpec, need_calib: bool,
          notes: list[str]) -> tuple[cal.FaceSet, tuple[np.ndarray | None, dict[str, Any]],
                                     tuple[np.ndarray, np.ndarray] | None]:
    """Evaluation faces, calibration input (+ what it is) and, under --max-drop, faces for accuracy control."""
    ev_path = cal.resolve(opts.eval, src.dataset_root, "evaluation")
    ev = cal.labelled_subset(cal.load_faces(ev_path, classes, cal.EVAL_SPLITS, "evaluation"), opts.eval_size, opts.seed)
    if len(ev) == 0:
        raise FerEdgeError(f"{ev_path}: no labelled faces of the model's classes to evaluate on; {cal.EVAL_HINT}")
    if ev.split != "test":
        notes.append(f"{ev.dataset} has no test split: evaluated on "
                     + ("its validation split" if ev.split else "all its faces (training faces may be among them)"))
    if not need_calib:
        return ev, (None, {}), None
    cb_path = cal.resolve(opts.calib, src.dataset_root, "calibration")
    cb_all = cal.load_faces(cb_path, classes, cal.CALIB_SPLITS, "calibration")
    cb = cal.balanced(cb_all, opts.calib_size, opts.seed)
    if Path(cb_path).resolve() == Path(ev_path).resolve() and cb.split == ev.split:
        notes.append("calibration and evaluation faces come from the same data (no separate splits)")
    tune = None
    if opts.max_drop_points is not None:
        tn = cal.labelled_subset(cb_all, TUNE_FACES, opts.seed)
        tune = (spec.prepare(tn.faces), tn.labels) if len(tn) else None
    info = {k: v for k, v in cb.describe().items() if k != "protocol"}
    return ev, (spec.prepare(cb.faces), info), tune


def _write(folder: Path, result: ConvertResult) -> None:
    """manifest.json (validated against the schema first), report.json and report.md."""
    d = result.manifest.to_dict()
    validate(d, "generated manifest")
    atomic.write_json(folder / MANIFEST, d)
    atomic.write_json(folder / "report.json", report.to_dict(result))
    atomic.write_text(folder / "report.md", report.markdown(result))


def _limit(opts: ConvertOptions) -> float:
    return opts.max_drop_points if opts.max_drop_points is not None else opts.tolerance


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a bundle (atomic_dir swaps the whole folder)."""
    if out.exists() and not (out / MANIFEST).is_file():
        if out.is_file() or any(out.iterdir()):
            raise FerEdgeError(f"{out}: exists and is not a fer-edge bundle; choose another --out")


def _build(job: _Job, entry: ExportFormat) -> None:
    """Export ``entry`` (fallbacks under --max-drop), validate, and add its row and artifact to ``job``."""
    missing = entry.missing()
    if missing:
        job.rows.append(Row(entry.format, entry.precision, "failed", missing))
        return
    tool = TOOLCHAINS.get(entry.toolchain)
    tries = tool.attempts(entry, job.ctx)
    tries = tries if job.opts.max_drop_points is not None else tries[:1]
    limit = _limit(job.opts)
    limit_name = "--max-drop" if job.opts.max_drop_points is not None else "the default tolerance"
    best: tuple[Row, Artifact | None, Path, dict[str, Any]] | None = None
    log: list[dict[str, Any]] = []
    for k, attempt in enumerate(tries):
        folder = job.ctx.workdir / f"{entry.format}_{entry.precision}_{k}"
        row, art = _attempt(job, entry, tool, attempt, folder, limit, limit_name)
        log.append({**attempt, "status": row.status, "delta": row.delta, "reason": row.reason})
        if best is None or _rank(row) < _rank(best[0]):
            best = (row, art, folder, attempt)
        if row.status == "passed":
            break
    assert best is not None
    row, art, folder, chosen = best
    row = replace(row, attempts=tuple(log) if len(log) > 1 else ())
    if art is not None:
        for f in (art.file, *(c["file"] for c in art.companions)):
            shutil.move(str(folder / f), str(job.bundle_dir / f))
        if job.opts.check_determinism:
            row = replace(row, deterministic=_repeatable(job, entry, tool, chosen, art))
        job.artifacts.append(art)
    job.rows.append(row)


def _rank(row: Row) -> tuple[int, float]:
    order = {"passed": 0, "degraded": 1, "failed": 2}[row.status]
    return order, -(row.delta if row.delta is not None else -1e9)


def _attempt(job: _Job, entry: ExportFormat, tool: Toolchain, attempt: dict[str, Any], folder: Path,
             limit: float, limit_name: str) -> tuple[Row, Artifact | None]:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"model_{entry.precision}{entry.suffix}"
    t0 = time.perf_counter()
    with diagnose.quiet() as cap:
        try:
            exported = tool.export(entry, job.ctx, dst, attempt)
            err = None
        except Exception as exc:  # every toolchain raises its own types; one row each
            exported, err = None, exc
    export_s = time.perf_counter() - t0
    if exported is None:
        assert err is not None
        if isinstance(err, FerEdgeError):
            return Row(entry.format, entry.precision, "failed", str(err), export_s=export_s), None
        return Row(entry.format, entry.precision, "failed", diagnose.reason(err, cap.text, entry),
                   export_s=export_s), None
    art = _artifact(entry, exported, folder)
    try:
        with diagnose.quiet() as cap:
            probs, eval_s = val.runtime_predict(Bundle(folder, replace(job.base, artifacts=(art,))), art,
                                                entry.backend, job.faces, job.opts.threads)
    except Exception as exc:  # a runtime that cannot run it: the artifact is kept, marked failed
        why = str(exc) if isinstance(exc, FerEdgeError) else diagnose.reason(exc, cap.text, entry)
        art = replace(art, status="failed", status_reason=f"exported but does not run on {entry.backend}: {why}")
        return Row(entry.format, entry.precision, "failed", art.status_reason, file=art.file,
                   bytes=art.total_bytes, export_s=export_s), art
    s = val.score(probs, job.ref, job.labels, eval_s)
    status, why = val.judge(entry, s, limit, limit_name)
    art = replace(art, status=status, status_reason=why, accuracy=s.accuracy, agreement=s.agreement)
    return Row(entry.format, entry.precision, status, why, art.file, art.total_bytes, None, s.accuracy, s.delta,
               s.agreement, export_s, eval_s), art


def _artifact(entry: ExportFormat, ex: Exported, folder: Path) -> Artifact:
    main, *extra = ex.files
    companions = tuple({"file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in extra)
    return Artifact(format=entry.format, precision=entry.precision, file=main.name, sha256=sha256_file(main),
                    bytes=main.stat().st_size, input_dtype=ex.input_dtype, output_dtype=ex.output_dtype,
                    input_quant=ex.input_quant, output_quant=ex.output_quant, options=_jsonable(ex.options),
                    companions=companions)


def _repeatable(job: _Job, entry: ExportFormat, tool: Toolchain, attempt: dict[str, Any], art: Artifact) -> bool | None:
    """Export the chosen variant once more and compare the sha256 of every file (None: the repeat failed)."""
    again = job.ctx.workdir / f"{entry.format}_{entry.precision}_repeat"
    again.mkdir(parents=True, exist_ok=True)
    try:
        with diagnose.quiet():
            ex = tool.export(entry, job.ctx, again / art.file, attempt)
    except Exception:  # a repeat that fails says nothing about determinism
        return None
    first = [job.bundle_dir / art.file, *(job.bundle_dir / c["file"] for c in art.companions)]
    return all(sha256_file(a) == sha256_file(b) for a, b in zip(first, ex.files, strict=True))


def _with_sizes(rows: list[Row]) -> list[Row]:
    ref = {r.format: r.bytes for r in rows if r.precision == "fp32" and r.bytes}
    return [replace(r, size_pct=100.0 * r.bytes / ref[r.format]) if r.bytes and r.format in ref else r
            for r in rows]


def versions() -> dict[str, str]:
    """Installed versions of the libraries a conversion uses."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in VERSIONED:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    out["python"] = platform.python_version()
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
