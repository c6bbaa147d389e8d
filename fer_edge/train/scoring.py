"""Training and scoring one chain stage on a split that means something: ``score_official`` (train on the official
training part, score the official test set) or ``score_folds`` (subject-independent folds scored one by one, then a
final model on all subjects to hand on). Each returns a ``StageScore``; ``fer_edge.train.outputs`` writes it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.preprocess import to_model_input
from fer_edge.train import outputs
from fer_edge.train.config import PROTOCOLS, STAGES
from fer_edge.train.folds import cv_folds, official_parts, subject_holdout
from fer_edge.train.settings import StageConfig
from fer_edge.train.stage import StageContext, StageJob, StageScore, StartModel
from fer_edge.train.surgery import load_model
from fer_edge.train.trainer import train_stage


def mistakes(model: object, faces01: np.ndarray, y_true: np.ndarray, probs: np.ndarray, limit: int,
             subjects: np.ndarray | None = None) -> dict:
    """Grad-CAM of the most confident mistakes (up to ``limit``; one per subject and true class where subjects
    are known, so near-identical frames of one sequence do not fill the grid), as arrays for the grid."""
    from fer_edge.train.gradcam import gradcam

    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")]
    if subjects is not None:
        seen: set = set()
        keep = []
        for i in wrong:
            key = (str(subjects[i]), int(y_true[i]))
            if key not in seen:
                seen.add(key)
                keep.append(i)
        wrong = np.asarray(keep, dtype=np.int64)
    wrong = wrong[:limit]
    if len(wrong) == 0:
        s = faces01.shape[1]
        return {"faces": np.zeros((0, s, s), np.uint8), "heats": np.zeros((0, s, s), np.float32),
                "y_true": np.zeros(0, np.int64), "y_pred": np.zeros(0, np.int64), "conf": np.zeros(0, np.float32)}
    heats, _ = gradcam(model, faces01[wrong], pred[wrong])
    return {"faces": np.uint8(np.round(faces01[wrong, ..., 0] * 255)), "heats": heats, "y_true": y_true[wrong],
            "y_pred": pred[wrong], "conf": probs[wrong, pred[wrong]].astype(np.float32)}


def _pick_mistakes(parts: list[dict], limit: int) -> dict:
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(-merged["conf"])[:limit]
    return {k: v[order] for k, v in merged.items()}


def score_official(ctx: StageContext, job: StageJob, start: StartModel) -> StageScore:
    """Train on the official training part (validating on its validation part), score the official test set."""
    from fer_edge.train.evaluate import evaluate

    cfg, sc, ds = ctx.cfg, job.config, job.ds
    train, val, test = official_parts(ds, cfg.val_fraction, sc.seed)
    ctx.bar.set_description(f"{job.backbone}/{job.stage}")
    ctx.say(f"== {job.title}: {len(train)} train, {len(val)} val, {len(test)} test faces "
            f"({PROTOCOLS[STAGES.get(job.stage).protocol]})")
    res = train_stage(train, val, sc, job.folder, init=start(sc.seed), resume=cfg.resume, callbacks=ctx.callbacks,
                      verbose=0)
    t_eval = time.time()
    model = load_model(res.model_path)
    ev = evaluate(model, test, fgsm_epsilon=sc.adv_epsilon, flip=cfg.tta == "flip")
    x = to_model_input(test.images, int(model.input_shape[1]))
    cams = mistakes(model, x, ev.y_true, ev.probs, cfg.gradcam_faces, test.labelled().subjects)
    timings = {"train_seconds": res.seconds, "eval_seconds": time.time() - t_eval}
    ctx.bar.update(1)
    return StageScore(ev.y_true, ev.y_pred, ev.fgsm_accuracy, cams, res.history, res.best_val_accuracy, 1, timings,
                      start.head, start.source_classes)


def score_folds(ctx: StageContext, job: StageJob, start: StartModel) -> StageScore:
    """Score subject-independent folds (each fold's model never saw its test subjects; every face is scored once),
    then train the model handed on on all subjects, validating on held-out subjects."""
    import keras

    from fer_edge.train.evaluate import fold_stats

    cfg, sc, ds = ctx.cfg, job.config, job.ds
    protocol = STAGES.get(job.stage).protocol
    folds = cv_folds(ds, protocol, job.folds, sc.seed)
    what = (f"leave-one-subject-out, {len(folds)} folds" if protocol == "loso" and job.folds is None
            else f"{len(folds)}-fold by subject")
    ctx.say(f"== {job.title}: {len(ds)} faces, {len(np.unique(ds.subjects))} subjects, {what}")
    fold_sc = replace(sc, epochs=cfg.fold_epochs_for(job.stage))
    results, cam_parts = [], []
    t_folds = time.time()
    for i, (tr, te) in enumerate(folds):
        ctx.bar.set_description(f"{job.backbone}/{job.stage} fold {i + 1}/{len(folds)}")
        r, cam = _run_fold(ctx, ds, job.folder / "folds" / f"fold_{i + 1:02d}", i, tr, te, fold_sc, start)
        results.append(r)
        cam_parts.append(cam)
        ctx.bar.update(1)
        keras.backend.clear_session()
    order = np.concatenate([r["test_index"] for r in results])
    sizes = np.array([len(r["test_index"]) for r in results])
    fgsm = float(np.sum([r["fgsm_accuracy"] * n for r, n in zip(results, sizes, strict=True)]) / sizes.sum())
    info = fold_stats([r["accuracy"] for r in results])
    info["test_subjects"] = [r["test_subjects"] for r in results]
    transfer = job.init is not None or sc.weights != "none"
    info["fold_epochs"] = sum(p.epochs for p in fold_sc.resolved_phases(transfer))
    info["tta"] = cfg.tta
    fold_seconds = [r["seconds"] for r in results]
    earlier = sum(fold_seconds) - (time.time() - t_folds)  # folds finished before a --resume
    # the model handed on: all subjects, a subject-held-out part for validation (never a test subject)
    ctx.bar.set_description(f"{job.backbone}/{job.stage} final model")
    tr, va = subject_holdout(ds, np.arange(len(ds)), cfg.val_fraction, sc.seed)
    ctx.say(f"-- {job.title}: final model on {len(tr)} faces, validating on {len(va)} faces of "
            f"{len(np.unique(ds.subjects[va]))} held-out subject(s)")
    res = train_stage(ds.take(tr), ds.take(va), sc, job.folder, init=start(sc.seed), resume=cfg.resume,
                      callbacks=ctx.callbacks, verbose=0)
    ctx.bar.update(1)
    return StageScore(ds.local_labels()[order], np.concatenate([r["y_pred"] for r in results]).astype(np.int64),
                      fgsm, _pick_mistakes(cam_parts, cfg.gradcam_faces), res.history, res.best_val_accuracy,
                      len(folds) + 1, {"fold_seconds": fold_seconds, "train_seconds": res.seconds}, start.head,
                      start.source_classes, info, earlier)


def _run_fold(ctx: StageContext, ds: FaceDataset, folder: Path, i: int, tr: np.ndarray, te: np.ndarray,
              sc: StageConfig, start: StartModel) -> tuple[dict, dict]:
    """Train on the fold's training subjects (a few held out for validation), score on its test subjects; a fold
    scored before (result.json + gradcam.npz) is read back."""
    cfg = ctx.cfg
    done = outputs.read_fold(folder)
    if done is not None:
        outputs.clean_fold(folder, cfg.keep_fold_models)
        return done
    t0 = time.time()
    tr_i, va_i = subject_holdout(ds, tr, cfg.val_fraction, sc.seed + i + 1)
    res = train_stage(ds.take(tr_i), ds.take(va_i), sc, folder, init=start(sc.seed + i), resume=cfg.resume,
                      callbacks=ctx.callbacks, verbose=0)
    from fer_edge.train.adversarial import fgsm_accuracy
    from fer_edge.train.evaluate import predict

    model = load_model(res.model_path)
    test = ds.take(te)
    x = to_model_input(test.images, int(model.input_shape[1]))
    y = test.local_labels()
    probs = predict(model, x, flip=cfg.tta == "flip")
    acc = float(np.mean(probs.argmax(axis=1) == y))
    r = {"fold": i + 1, "test_subjects": sorted(set(map(str, test.subjects))),
         "val_subjects": sorted(set(map(str, ds.subjects[va_i]))), "train_faces": len(tr_i), "val_faces": len(va_i),
         "test_index": te.tolist(), "y_pred": probs.argmax(axis=1).tolist(), "accuracy": acc,
         "fgsm_accuracy": fgsm_accuracy(model, x, y, sc.adv_epsilon), "best_val_accuracy": res.best_val_accuracy,
         "epochs": len(res.history.get("loss", [])), "seconds": time.time() - t0}
    cam = mistakes(model, x, y, probs, max(1, cfg.gradcam_faces // 2), test.subjects)
    outputs.write_fold(folder, r, cam)
    ctx.say(f"   fold {i + 1}: test subjects {','.join(r['test_subjects'][:6])}"
            f"{'...' if len(r['test_subjects']) > 6 else ''}  accuracy {acc:.3f}")
    outputs.clean_fold(folder, cfg.keep_fold_models)
    return r, cam
