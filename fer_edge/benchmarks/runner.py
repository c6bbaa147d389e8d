"""``fer-edge bench``: one row per model x format x precision x backend x threads, each measured in a fresh
worker process; a row that fails records why and the run goes on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import fer_edge
from fer_edge.benchmarks import accuracy as acc
from fer_edge.benchmarks import flops as cost
from fer_edge.benchmarks import sysinfo
from fer_edge.benchmarks.results import document, empty_row, mark_pareto
from fer_edge.bundle import PRECISIONS, Artifact, Bundle, load_bundle
from fer_edge.errors import FerEdgeError
from fer_edge.extras import extra_for, install_line
from fer_edge.redact import redact, redact_all
from fer_edge.runtime.backends import BACKENDS, available_backends

Echo = Callable[[str], None]
UNAVAILABLE = "not installed here"  # in the reason of a row no installed backend can run (not a failure to exit on)
SKIPPED = "skipped"  # the status of such a row (earlier results: "failed" with UNAVAILABLE in the reason)


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and how; ``None`` filters mean everything the bundle holds / every installed backend."""

    formats: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    threads: tuple[int, ...] = (1,)
    warmup: int = 10
    runs: int = 100
    rounds: int = 3
    min_time_s: float = 0.5  # each latency round lasts at least this long
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    limit: int | None = None
    max_drop_points: float = 2.0  # accuracy drop vs fp32 (percentage points) above which a row is "degraded"
    timeout_s: float = 600.0
    device_name: str | None = None
    pipeline: str | None = None
    pipeline_frames: int | None = 300
    flip_tta: bool = False  # every row (and --pipeline) classifies each face and its mirror image, averaged
    max_drop: InitVar[float | None] = None  # the old spelling: a FRACTION (0.02 = 2 points)

    def __post_init__(self, max_drop: float | None) -> None:
        if max_drop is not None:
            object.__setattr__(self, "max_drop_points", 100.0 * max_drop)

    def check(self) -> None:
        for name, values in (("--threads", self.threads), ("--batch-sizes", self.batch_sizes)):
            if not values or min(values) < 1:
                raise FerEdgeError(f"{name} needs positive integers, got {','.join(map(str, values)) or 'nothing'}")
        if self.runs < 1 or self.rounds < 1 or self.warmup < 0 or self.min_time_s < 0:
            raise FerEdgeError("--runs and --rounds must be >= 1, --warmup and --min-time >= 0")
        if self.limit is not None and self.limit < 1:
            raise FerEdgeError(f"--limit must be >= 1, got {self.limit}")
        for b in self.backends or ():
            BACKENDS.get(b)  # unknown name: error with the valid names


@dataclass
class Job:
    """One row to measure."""

    bundle: Bundle
    index: int
    artifact: Artifact
    backend: str
    threads: int
    result: dict[str, Any] = field(default_factory=dict)


def _format_rank(fmt: str) -> int:
    ranks = [cls.priority for _, cls in BACKENDS.items() if fmt in cls.formats]
    return min(ranks, default=99)


def _precision_rank(p: str) -> int:
    return PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS)


def plan(bundle: Bundle, opts: BenchOptions) -> tuple[list[Job], list[dict[str, Any]], list[str]]:
    """(jobs in row order, failed rows for artifacts nothing here can run, notes on filters that matched nothing)."""
    installed = available_backends()
    chosen = list(opts.backends) if opts.backends else installed
    ranked = sorted(chosen, key=lambda n: BACKENDS.get(n).priority)
    arts = [(i, a) for i, a in enumerate(bundle.manifest.artifacts)
            if (opts.formats is None or a.format in opts.formats)
            and (opts.precisions is None or a.precision in opts.precisions)]
    arts.sort(key=lambda ia: (_format_rank(ia[1].format), _precision_rank(ia[1].precision), ia[0]))
    jobs, failed, notes = [], [], []
    for i, art in arts:
        names = [n for n in ranked if art.format in BACKENDS.get(n).formats]
        if not names:
            able = [n for n, cls in BACKENDS.items() if art.format in cls.formats]
            if opts.backends and able:
                continue  # the user chose backends that do not run this format
            if not able:
                failed.append(_base_row(bundle, art, "", min(opts.threads), status="failed",
                                        reason=f"no fer-edge backend runs format {art.format!r}"))
                continue
            why = f"no backend: format {art.format} needs {' or '.join(able)}, {UNAVAILABLE}: {_install(able)}"
            failed.append(_base_row(bundle, art, "", min(opts.threads), status=SKIPPED, reason=why))
            continue
        jobs += [Job(bundle, i, art, n, t) for n in names for t in opts.threads]
    have = {(a.format, a.precision) for a in bundle.manifest.artifacts}
    for f in opts.formats or ():
        for p in opts.precisions or sorted({p for fmt, p in have if fmt == f}):
            if (f, p) not in have:
                notes.append(f"{bundle.manifest.name}: no {f}:{p} artifact in {bundle.path}")
    return jobs, failed, notes


def _install(backends: list[str]) -> str:
    """The install line for any of these backends: their extras (fer-edge is on no index), else their packages."""
    extras = [extra_for(mods[0]) if (mods := BACKENDS.get(n).modules) else None for n in backends]
    if all(extras):
        return install_line(*dict.fromkeys(extras))
    return "pip install " + " or ".join(BACKENDS.get(n).package for n in backends)


def _disk_bytes(bundle: Bundle, art: Artifact) -> int | None:
    """Bytes on disk of the artifact file and its companions (None when any is missing)."""
    files = [art.file, *(c["file"] for c in art.companions)]
    paths = [bundle.file(f) for f in files]
    return sum(p.stat().st_size for p in paths) if all(p.is_file() for p in paths) else None


def _base_row(bundle: Bundle, art: Artifact, backend: str, threads: int, **fields: Any) -> dict[str, Any]:
    size = _disk_bytes(bundle, art)
    m = bundle.manifest
    return empty_row(model=m.name, bundle=str(bundle.path), backbone=m.backbone, format=art.format,
                     precision=art.precision, backend=backend, threads=threads, file=art.file,
                     size_bytes=size, size_mb=None if size is None else size / 1e6, **fields)


def _worker(job: dict[str, Any], workdir: Path, timeout_s: float) -> dict[str, Any]:
    """Run one job in a fresh interpreter; its result, or why there is none."""
    tag = uuid.uuid4().hex[:8]
    job_path, res_path = workdir / f"job-{tag}.json", workdir / f"result-{tag}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ)
    root = str(Path(fer_edge.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "fer_edge.benchmarks.worker", str(job_path), str(res_path)],
                              env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"no result within {timeout_s:.0f} s (--timeout)",
                "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    if not res_path.is_file():
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        return {"ok": False, "stage": "worker", "error": redact(f"worker process died ({how}) {tail[0][:200]}").strip(),
                "wall_s": wall}
    res = json.loads(res_path.read_text())
    res["wall_s"] = wall
    return res


def _row(job: Job, res: dict[str, Any], params: tuple[int | None, str],
         fl: tuple[int | None, str]) -> dict[str, Any]:
    row = _base_row(job.bundle, job.artifact, job.backend, job.threads, parameters=params[0],
                    parameters_note=params[1], flops=fl[0], flops_note=fl[1], wall_s=res.get("wall_s"),
                    backend_version=res.get("backend_version") or BACKENDS.get(job.backend).version())
    if not res.get("ok"):
        row.update(status="failed", reason=redact(f"{res.get('stage', '?')}: {res.get('error', 'unknown error')}"))
        return row
    lat = res["latency"]
    tput = res["throughput"]
    ok = {int(b): v for b, v in tput.items() if isinstance(v, float)}
    best = max(ok, key=ok.get) if ok else None
    baseline, peak = res.get("rss_baseline_mb"), res.get("peak_rss_mb")
    row.update(
        status="passed",
        latency_mean_ms=lat["mean"], latency_p50_ms=lat["p50"], latency_p90_ms=lat["p90"],
        latency_p99_ms=lat["p99"], latency_std_ms=lat["std"], latency_min_ms=lat["min"],
        latency_max_ms=lat["max"], latency_n=lat["n"], latency_samples=res["latency_samples"],
        round_p50_ms=res["round_p50_ms"], round_cv=res["round_spread"]["cv"],
        round_range=res["round_spread"]["range"], throughput_by_batch=tput,
        throughput_fps=ok.get(best) if best else None, best_batch=best,
        load_ms=res["load_ms"], first_inference_ms=res["first_inference_ms"], peak_rss_mb=peak,
        rss_baseline_mb=baseline, rss_delta_mb=None if baseline is None else peak - baseline,
    )
    problems = []
    if not res.get("outputs_finite", True):
        problems.append("non-finite outputs")
    if res.get("tensorflow_imported"):
        problems.append("TensorFlow was imported in the measured process")
    problems += [f"batch {b}: {v}" for b, v in tput.items() if not isinstance(v, float)]
    if problems:
        row.update(status="degraded", reason="; ".join(problems))
    return row


def _accuracy(rows: list[dict[str, Any]], jobs: list[Job], preds: dict[tuple[int, str], np.ndarray],
              y: np.ndarray | None, note: str, classes: tuple[str, ...], max_drop_points: float) -> None:
    """Fill the accuracy columns of one bundle's rows, with delta and agreement vs its first fp32 evaluation."""
    if y is None:
        for r in rows:
            r["accuracy_note"] = note
        return
    ref_key = next((k for k in preds if _job_artifact(jobs, k).precision == "fp32"), None)
    ref = preds.get(ref_key) if ref_key else None
    ref_scores = acc.scores(y, ref, classes) if ref is not None else None
    ref_name = f"{_job_artifact(jobs, ref_key).format}/fp32 on {ref_key[1]}" if ref_key else None
    for job, r in zip(jobs, rows, strict=True):
        p = preds.get((job.index, job.backend))
        if p is None:
            r["accuracy_note"] = "not measured: the row failed" if r["status"] == "failed" else note
            continue
        s = acc.scores(y, p, classes)
        r.update(accuracy=s["accuracy"], macro_f1=s["macro_f1"], per_class_f1=s["per_class_f1"],
                 eval_faces=len(y), accuracy_note=note)
        if ref is None:
            r["accuracy_note"] = "; ".join(filter(None, [note, "no fp32 artifact of this model was evaluated"]))
            continue
        r.update(accuracy_delta=s["accuracy"] - ref_scores["accuracy"], agreement=acc.agreement(p, ref),
                 reference=ref_name)
        if r["status"] == "passed" and -100 * r["accuracy_delta"] > max_drop_points:
            r.update(status="degraded", reason=f"accuracy {100 * r['accuracy_delta']:+.1f} pp vs {ref_name} "
                                               f"(limit {max_drop_points:.1f} pp)")


def _job_artifact(jobs: list[Job], key: tuple[int, str]) -> Artifact:
    return next(j.artifact for j in jobs if (j.index, j.backend) == key)


def bench_bundle(bundle: Bundle, faces: acc.Faces, opts: BenchOptions, workdir: Path,
                 echo: Echo) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of one bundle (measured one after another) and notes."""
    jobs, failed, notes = plan(bundle, opts)
    spec = bundle.manifest.input
    tag = uuid.uuid4().hex[:8]
    lat_path = workdir / f"latency-{tag}.npy"
    np.save(lat_path, spec.prepare(faces.images[:16]))
    y, note, eval_path = None, faces.info.get("note", ""), None
    if faces.labelled:
        y, drop_note = acc.targets(faces.labels, bundle.manifest)
        keep = y >= 0
        note = "; ".join(filter(None, [note, drop_note]))
        if not keep.any():
            y, note = None, f"no labelled face of a class the model has ({', '.join(bundle.manifest.classes)})"
        else:
            y = y[keep]
            eval_path = workdir / f"eval-{tag}.npy"
            np.save(eval_path, spec.prepare(faces.images[keep]))
    params, fl = cost.parameters(bundle), cost.flops(bundle)
    preds: dict[tuple[int, str], np.ndarray] = {}
    rows = []
    for n, job in enumerate(jobs, 1):
        key = (job.index, job.backend)
        pred_path = workdir / f"pred-{tag}-{n}.npy"
        spec_job = {"bundle": str(bundle.path), "artifact_index": job.index, "backend": job.backend,
                    "threads": job.threads, "warmup": opts.warmup, "runs": opts.runs, "rounds": opts.rounds,
                    "min_time_s": opts.min_time_s,
                    "batch_sizes": list(opts.batch_sizes), "latency_input": str(lat_path),
                    "eval_input": str(eval_path) if eval_path and key not in preds else None,
                    "predictions": str(pred_path), "flip_tta": opts.flip_tta,
                    "classes": list(bundle.manifest.classes)}
        res = _worker(spec_job, workdir, opts.timeout_s)
        if spec_job["eval_input"] and res.get("ok") and pred_path.is_file():
            preds[key] = np.load(pred_path).astype(np.int64)
        row = _row(job, res, params, fl)
        rows.append(row)
        echo(_progress(n, len(jobs), row))
    _accuracy(rows, jobs, preds, y, note, bundle.manifest.classes, opts.max_drop_points)
    for r in failed:
        r.update(parameters=params[0], parameters_note=params[1], flops=fl[0], flops_note=fl[1],
                 accuracy_note="not measured: skipped (no backend)" if r["status"] == SKIPPED else
                 "not measured: the row failed")
    return rows + failed, notes


def _progress(n: int, total: int, row: dict[str, Any]) -> str:
    what = f"{row['model']} {row['format']}/{row['precision']} {row['backend']} x{row['threads']}"
    if row["status"] == "failed":
        return f"[{n}/{total}] {what}: failed: {row['reason']}"
    return f"[{n}/{total}] {what}: {row['status']}, p50 {row['latency_p50_ms']:.3f} ms"


def _pipeline(bundle: Bundle, rows: list[dict[str, Any]], opts: BenchOptions, workdir: Path) -> dict[str, Any]:
    """End-to-end numbers from ``fer_edge.runtime.run.measure`` for the bundle's fastest passed row."""
    entry: dict[str, Any] = {"status": "failed", "reason": "", "model": bundle.manifest.name,
                             "bundle": str(bundle.path), "source": redact(opts.pipeline or "")}
    ok = [r for r in rows if r["status"] != "failed" and r["latency_p50_ms"] is not None]
    if not ok:
        entry["reason"] = "no row of this bundle ran, so there is no model to run end to end"
        return entry
    best = min(ok, key=lambda r: r["latency_p50_ms"])
    entry.update(backend=best["backend"], precision=best["precision"], format=best["format"],
                 threads=best["threads"], model_only_p50_ms=best["latency_p50_ms"])
    kwargs = {"backend": best["backend"], "threads": best["threads"], "precision": best["precision"],
              "max_frames": opts.pipeline_frames, "draw": False, "flip_tta": opts.flip_tta}
    job = {"mode": "pipeline", "source": opts.pipeline, "bundle": str(bundle.path), "kwargs": kwargs}
    res = _worker(job, workdir, opts.timeout_s)
    if not res.get("ok"):
        entry["reason"] = redact(f"{res.get('stage', '?')}: {res.get('error', 'unknown error')}")
        return entry
    entry.update(status="passed", **{("pipeline_model" if k == "model" else k): v for k, v in res["pipeline"].items()})
    return redact_all(entry)


def run_bench(bundles: list[str | Path], data: str | Path | None = None, opts: BenchOptions | None = None,
              echo: Echo = lambda s: None) -> dict[str, Any]:
    """Benchmark bundles on this machine; a results document with one run (see ``results.SCHEMA``).

    Every string recorded or echoed passes through ``fer_edge.redact.redact`` (no credentials of a source URL)."""
    opts = opts or BenchOptions()
    opts.check()
    shown = echo
    echo = lambda s: shown(redact(s))  # noqa: E731
    t0 = time.perf_counter()
    device = sysinfo.describe(opts.device_name)
    faces = acc.load_faces(data, opts.limit) if data else acc.synthetic_faces()
    echo(f"device: {device['cpu']} ({device['usable_cores']} cores), {device['os']}; "
         f"faces: {faces.info.get('faces')} from {faces.info.get('dataset')}")
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    if opts.flip_tta:
        notes.append("flip TTA: every row classifies each face and its mirror image and averages them "
                     "(two inferences per face, in latency and accuracy alike)")
    pipeline: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        for spec in bundles:
            try:
                bundle = load_bundle(spec)
            except FerEdgeError as exc:
                rows.append(empty_row(model=Path(spec).name, bundle=str(spec), backbone="", format="",
                                      precision="", backend="", threads=1, file="", status="failed",
                                      reason=str(exc), accuracy_note="not measured: the bundle did not load"))
                echo(f"{spec}: failed: {exc}")
                continue
            brows, bnotes = bench_bundle(bundle, faces, opts, Path(tmp), echo)
            rows += brows
            notes += bnotes
            if opts.pipeline:
                echo(f"pipeline: {opts.pipeline} through {bundle.manifest.name}")
                pipeline.append(_pipeline(bundle, brows, opts, Path(tmp)))
    mark_pareto(rows)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.__dict__.items()}
    device["load_average_end"] = sysinfo.load_average()
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", device["name"]).strip("-")[:40] or "device"
    run = {"id": f"{slug}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
           "settings": settings, "data": faces.info, "notes": notes, "rows": rows, "pipeline": pipeline,
           "wall_s": time.perf_counter() - t0}
    return document([redact_all(run)])


def failures(doc: dict[str, Any]) -> list[str]:
    """One line per failed row or failed pipeline measurement of a results document; rows of a format that no
    backend installed here runs are listed in the results (skipped) but are not failures."""
    out = []
    for run in doc["runs"]:
        for r in run["rows"]:
            if r["status"] == "failed" and not (r["backend"] == "" and UNAVAILABLE in r["reason"]):
                what = " ".join(f"{r['model']} {r['format']}/{r['precision']} {r['backend']}".split()) \
                    if r["format"] else r["model"]
                out.append(f"{what}: {r['reason']}")
        out += [f"pipeline {p.get('model')}: {p['reason']}" for p in run.get("pipeline", []) if p["status"] == "failed"]
    return out
