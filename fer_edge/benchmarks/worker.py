"""One benchmark row, measured in a fresh process so that memory and load time belong to that row alone.

``python -m fer_edge.benchmarks.worker JOB.json RESULT.json``: JOB names the bundle, artifact, backend, threads,
timing settings and the .npy inputs; RESULT gets the measurements or the stage that failed and why. Top-1
predictions on the evaluation faces go to ``job["predictions"]``. This module never imports TensorFlow: it
records whether anything did, and the row is marked when so.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.benchmarks.latency import spread, summarize, thin, throughput, time_calls, time_round
from fer_edge.benchmarks.memory import peak_rss_mb, rss_mb

KEEP_SAMPLES = 2000  # latency samples stored per row (statistics use all of them)
PIPELINE_OPTIONS = ("backend", "threads", "precision", "max_frames", "draw", "flip_tta", "warmup")  # of a pipeline job


def _runner(job: dict[str, Any], out: dict[str, Any]):
    """Open the artifact on the backend; returns f(float32 NHWC) -> float32 probabilities, as Classifier does.

    ``out["stage"]`` names the step running, so a failure says where it happened.
    """
    from fer_edge.bundle import load_bundle
    from fer_edge.runtime.backends import BACKENDS
    from fer_edge.runtime.classifier import dequantize, flip_averaged, quantize

    out["stage"] = "bundle"
    bundle = load_bundle(job["bundle"])
    art = bundle.manifest.artifacts[job["artifact_index"]]
    cls = BACKENDS.get(job["backend"])
    cls.require()
    out["stage"] = "import"
    for module in cls.modules:  # import the library first, so the baseline RSS includes it
        try:
            importlib.import_module(module)
            break
        except ImportError:
            continue
    out["backend_version"] = cls.version()
    out["stage"] = "verify"
    path = bundle.verify(art)
    out["rss_baseline_mb"] = rss_mb()
    out["stage"] = "load"
    t0 = time.perf_counter_ns()
    backend = cls(path, threads=job["threads"])
    out["load_ms"] = (time.perf_counter_ns() - t0) / 1e6
    in_dtype = np.dtype(art.input_dtype)

    def run(x: np.ndarray) -> np.ndarray:
        raw = backend.invoke(quantize(x, in_dtype, art.input_quant))
        return dequantize(raw, art.output_quant).reshape(len(x), -1)

    return flip_averaged(run) if job.get("flip_tta") else run


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Everything one row needs, or ``error`` and the ``stage`` it failed in."""
    out: dict[str, Any] = {"ok": False, "stage": "start"}
    try:
        run = _runner(job, out)
        faces = np.load(job["latency_input"])
        singles = [faces[i : i + 1] for i in range(min(len(faces), 16))]
        out["stage"] = "first inference"
        t0 = time.perf_counter_ns()
        probs = run(singles[0])
        out["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6
        n_classes = len(job["classes"]) if job.get("classes") else probs.shape[1]
        if probs.shape[1] != n_classes:
            raise ValueError(f"the manifest lists {n_classes} classes but the model gives {probs.shape[1]} "
                             "outputs per face")
        out["outputs_finite"] = bool(np.all(np.isfinite(probs)))
        out["stage"] = "latency"
        time_calls(run, singles, job["warmup"])
        rounds = [time_round(run, singles, job["runs"], job.get("min_time_s", 0.0)) for _ in range(job["rounds"])]
        samples = [t for r in rounds for t in r]
        out["latency"] = summarize(samples).as_dict()
        out["latency_samples"] = [round(t, 4) for t in thin(samples, KEEP_SAMPLES)]
        out["round_p50_ms"] = [summarize(r).p50 for r in rounds]
        out["round_spread"] = spread(out["round_p50_ms"])
        out["stage"] = "throughput"
        out["throughput"] = {}
        for bs in job["batch_sizes"]:
            batch = np.resize(faces, (bs, *faces.shape[1:]))
            try:
                out["throughput"][str(bs)] = throughput(run, batch, max_calls=max(3, job["runs"] // bs))
            except Exception as exc:  # one batch size failing is recorded, not fatal
                out["throughput"][str(bs)] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
        out["peak_rss_mb"] = peak_rss_mb()
        if job.get("eval_input"):
            out["stage"] = "accuracy"
            x = np.load(job["eval_input"], mmap_mode="r")
            step = max((b for b in job["batch_sizes"] if isinstance(out["throughput"].get(str(b)), float)),
                       default=1)
            preds = np.concatenate([run(np.asarray(x[i : i + step])).argmax(axis=1) for i in range(0, len(x), step)])
            np.save(job["predictions"], preds.astype(np.int16))
        out["tensorflow_imported"] = "tensorflow" in sys.modules
        out["ok"] = True
        del out["stage"]
    except Exception as exc:  # every failure becomes a row with its reason
        out["error"] = f"{type(exc).__name__}: {exc}"[:400]
        out["traceback"] = traceback.format_exc(limit=4)[-1500:]
    return out


def pipeline(job: dict[str, Any]) -> dict[str, Any]:
    """End-to-end numbers from ``fer_edge.runtime.run.measure``; a job option not in PIPELINE_OPTIONS is refused."""
    out: dict[str, Any] = {"ok": False, "stage": "options"}
    kwargs = dict(job["kwargs"])
    unknown = sorted(set(kwargs) - set(PIPELINE_OPTIONS))
    if unknown:
        out["error"] = f"unknown pipeline option(s) {', '.join(unknown)}; valid: {', '.join(PIPELINE_OPTIONS)}"
        return out
    out["stage"] = "import"
    try:
        from fer_edge.runtime.run import measure as run_pipeline
    except ImportError as exc:
        out["error"] = f"fer_edge.runtime.run.measure is not available in this install ({exc})"
        return out
    out["stage"] = "pipeline"
    try:
        res = run_pipeline(job["source"], job["bundle"], **kwargs)
    except Exception as exc:  # recorded; the model rows stand
        out["error"] = f"{type(exc).__name__}: {exc}"[:400]
        return out
    res = dict(res) if isinstance(res, dict) else dict(vars(res))
    out.update(ok=True, pipeline=json.loads(json.dumps(res, default=str)))
    out["pipeline"]["tensorflow_imported"] = "tensorflow" in sys.modules
    del out["stage"]
    return out


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    result = pipeline(job) if job.get("mode") == "pipeline" else measure(job)
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
