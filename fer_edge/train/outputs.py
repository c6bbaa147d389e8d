"""Everything a chain stage leaves in its folder, written in one place: per fold result.json and gradcam.npz (read
back on --resume), and for the stage history.csv, curves.png, confusion.png, gradcam.png, report.json/.txt,
saved_model/ and, last, run.json (which marks the stage finished)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.train import distribute, reports
from fer_edge.train.backbones import BACKBONES, export_saved_model
from fer_edge.train.config import PROTOCOLS, STAGES, ChainConfig
from fer_edge.train.stage import StageContext, StageJob, StageOutcome, StageScore
from fer_edge.train.surgery import load_model

# ----------------------------------------------------------------------------------------------- folds


def write_fold(folder: Path, result: dict, mistakes: dict) -> None:
    """A scored fold: its Grad-CAM arrays, then result.json (the mark that it is done)."""
    with atomic.atomic_path(folder / "gradcam.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **mistakes)
    atomic.write_json(folder / "result.json", result)


def read_fold(folder: Path) -> tuple[dict, dict] | None:
    """A fold scored before (result.json and gradcam.npz), or None."""
    result_file, cam_file = folder / "result.json", folder / "gradcam.npz"
    if not (result_file.is_file() and cam_file.is_file()):
        return None
    with np.load(cam_file) as z:
        cam = {k: z[k] for k in z.files}
    return json.loads(result_file.read_text()), cam


def clean_fold(folder: Path, keep: bool) -> None:
    """A scored fold keeps its numbers and history; its checkpoints (tens of MB) go unless asked to keep them."""
    if keep:
        return
    shutil.rmtree(folder / "ckpt", ignore_errors=True)
    (folder / "model.keras").unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------- the stage


def write_stage(ctx: StageContext, job: StageJob, score: StageScore) -> StageOutcome:
    """Write a scored stage's reports, SavedModel and run.json; drop its resumable checkpoint."""
    from fer_edge.train.evaluate import metrics

    folder, sc, classes, cv = job.folder, job.config, job.ds.classes, score.cross_validated
    protocol = STAGES.get(job.stage).protocol
    m = metrics(score.y_true, score.y_pred, classes)
    full_hist = json.loads((folder / "history.json").read_text())
    _write_plots(job, score, m, full_hist)
    first = job.init is None or job.init == ctx.cfg.weights  # the chain's first stage (weights: a model file)
    start = "from " + (f"weights {ctx.cfg.weights}" if first else "the previous stage")
    protocol_text = (f"{PROTOCOLS[protocol]} ({score.folds['folds']} folds, up to {score.folds['fold_epochs']} "
                     f"epochs each, {start})" if cv else f"{PROTOCOLS[protocol]} ({m['n']} faces)")
    if ctx.cfg.tta != "none":
        protocol_text += f", {ctx.cfg.tta} test-time augmentation"
    fgsm = score.fgsm_accuracy
    report = {"backbone": job.backbone, "stage": job.stage, "dataset": job.ds.name, "protocol": protocol,
              "protocol_text": protocol_text, "classes": list(classes), "metrics": m, "folds": score.folds,
              "fgsm_accuracy": fgsm, "fgsm_epsilon": sc.adv_epsilon, "adversarial": sc.adversarial,
              "best_val_accuracy": score.best_val_accuracy, "tta": ctx.cfg.tta}
    reports.write_report(report, folder)
    export_saved_model(load_model(folder / "model.keras"), folder / "saved_model")
    summary = {"accuracy": score.folds["mean"] if cv else m["accuracy"], "std": score.folds["std"] if cv else None,
               "folds": score.folds["folds"] if cv else None, "pooled_accuracy": m["accuracy"],
               "macro_f1": m["macro_f1"], "macro_recall": m["macro_recall"], "fgsm_accuracy": fgsm,
               "adversarial": sc.adversarial, "best_val_accuracy": score.best_val_accuracy,
               "epochs": len(score.history.get("loss", [])), "seconds": _elapsed(job, score), "status": "finished",
               "model": str(folder / "model.keras")}
    fps = [f for f in full_hist.get("faces_per_second", []) if f == f]  # training faces/s per epoch, NaN = not kept
    timings = {**score.timings, "started": job.started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "seconds": _elapsed(job, score), "faces_per_second": float(np.median(fps)) if fps else None}
    write_run_record(folder / "run.json", run_record(ctx.cfg, job, score, summary, timings))
    last = folder / "ckpt" / "last.keras"
    if last.is_file():
        last.unlink()  # only a finished stage gets here; run.json marks it done for --resume
    ctx.say(f"{job.backbone}/{job.stage}: {reports.cell(summary)} (macro F1 {m['macro_f1']:.3f}, "
            f"FGSM@{sc.adv_epsilon} {fgsm:.3f}) -> {folder}")
    return StageOutcome(folder / "model.keras", classes, summary)


def _elapsed(job: StageJob, score: StageScore) -> float:
    return time.time() - job.clock + score.earlier_seconds


def _write_plots(job: StageJob, score: StageScore, m: dict, history: dict) -> None:
    """history.csv, curves.png, confusion.png and the Grad-CAM grid of the most confident mistakes."""
    folder, classes, cv = job.folder, job.ds.classes, score.cross_validated
    reports.write_history_csv(history, folder / "history.csv")
    reports.plot_curves(history, folder / "curves.png", job.title + (" (final model)" if cv else ""))
    reports.plot_confusion(np.asarray(m["confusion"]), classes, folder / "confusion.png",
                           f"{job.title}: " + (f"pooled over {score.folds['folds']} folds" if cv else "test set"))
    cams = score.mistakes
    reports.plot_gradcam_grid(cams["faces"], cams["heats"], cams["y_true"], cams["y_pred"], cams["conf"], classes,
                              folder / "gradcam.png",
                              f"{job.title}: most confident mistakes (Grad-CAM of the prediction)")


def run_record(cfg: ChainConfig, job: StageJob, score: StageScore, summary: dict, timings: dict) -> dict:
    """The content of a finished stage's run.json."""
    sc, plan, src = job.config, job.plan, score.source_classes
    return {"status": "finished", "backbone": job.backbone, "stage": job.stage, "classes": list(job.ds.classes),
            "input_size": int(sc.input_size or BACKBONES.get(job.backbone).input_size),
            "protocol": STAGES.get(job.stage).protocol, "plan": plan,
            "config": {**plan["config"], "chain": cfg.to_dict()},
            "init": {"from": job.init or cfg.weights, "classes": list(src) if src else None, "head": score.head},
            "data": reports.fingerprint(job.ds), "versions": reports.versions(), "timings": timings,
            "summary": summary, "units": score.units, "distribute": distribute.current().describe()}


def write_run_record(path: Path, record: dict) -> None:
    """Write run.json (atomically; a stage with a run.json counts as finished): these keys plus the versioned,
    schema-checked run record fields (``fer_edge.run_record``: input spec, crop rule, dataset, ...)."""
    from fer_edge import run_record as versioned

    versioned.write(path, record)


def read_finished(folder: Path) -> tuple[StageOutcome, int] | None:
    """A stage finished earlier (run.json says so) as it was handed on, with its progress-bar units; or None."""
    run_file = folder / "run.json"
    if not run_file.is_file():
        return None
    run = json.loads(run_file.read_text())
    if run.get("status") != "finished":
        return None
    return StageOutcome(folder / "model.keras", tuple(run["classes"]), run["summary"]), run.get("units", 1)
