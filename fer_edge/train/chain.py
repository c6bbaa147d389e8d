"""The chained transfer ImageNet/none -> FERPlus -> RAF-DB -> JAFFE -> CK+ (any subsequence), for one backbone or
a grid of them. Each stage starts from the previous stage's best model (head rebuilt when the class set changes)
and is scored on a split that means something: the official test set, or subject-independent folds.

Layout: ``OUT/<backbone>/<stage>/`` per stage (model.keras, saved_model/, reports; ``folds/fold_NN/`` inside for
CV stages), ``OUT/summary.{json,md}``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.data.types import FaceDataset
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.train import distribute, reports
from fer_edge.train.backbones import BACKBONES, export_saved_model
from fer_edge.train.config import PROTOCOLS, STAGES, ChainConfig
from fer_edge.train.folds import cv_folds, load_stage_data, official_parts, resolve_data, subject_holdout, subset
from fer_edge.train.trainer import StageConfig, augment_level, to_model_input, train_stage

# ----------------------------------------------------------------------------------------------- models


def transfer_head(model: object, old: tuple[str, ...] | None, new: tuple[str, ...], dropout: float) -> object:
    """The same network with a new "head" for the classes ``new``: everything up to "gap" is kept (same layer
    objects, so same weights); rows of classes both heads share are copied, the others start fresh."""
    import keras
    from keras import layers

    features = model.get_layer("gap").output
    x = layers.Dropout(dropout, name="head_dropout")(features)
    head = layers.Dense(len(new), activation="softmax", name="head")
    out = head(x)
    result = keras.Model(model.input, out, name=model.name)
    if old:
        k_old, b_old = (np.asarray(w) for w in model.layers[-1].get_weights())
        k_new, b_new = (np.asarray(w).copy() for w in head.get_weights())
        for j, c in enumerate(new):
            if c in old:
                k_new[:, j], b_new[j] = k_old[:, old.index(c)], b_old[old.index(c)]
        head.set_weights([k_new, b_new])
    return result


def model_classes(path: str | Path, n: int) -> tuple[str, ...] | None:
    """Class order of a saved model if it can be told (run.json beside it, or 8 outputs = canonical)."""
    from fer_edge.train.gradcam import class_names

    try:
        return class_names(path, n)
    except FerEdgeError:
        return None


def start_model(source: str | Path, classes: tuple[str, ...], dropout: float, seed: int,
                source_classes: tuple[str, ...] | None = None) -> tuple[object, str, tuple[str, ...] | None]:
    """Load ``source`` for a stage with ``classes``; rebuild its head when the class set differs.
    Returns the model, what happened to the head ("kept" or "rebuilt") and the source's classes if known."""
    import keras

    from fer_edge.train.backbones import load_model

    model = load_model(source)
    n = int(model.output_shape[-1])
    src = source_classes or model_classes(source, n)
    if src is None and n == len(classes):
        src = classes  # an unlabelled head of the right size: assume the same order
    src = tuple(src) if src else None
    if src == tuple(classes):
        return model, "kept", src
    keras.utils.set_random_seed(seed)
    return transfer_head(model, src, classes, dropout), "rebuilt", src


def check_start_weights(path: str | Path, backbone: str, input_size: int | None) -> int:
    """A --weights PATH model must be a fer-edge classifier of ``backbone``; returns its input size."""
    from fer_edge.train.backbones import load_model

    model = load_model(path)
    names = {layer.name for layer in model.layers}
    if "gap" not in names or "backbone" not in names:
        raise ModelError(f"--weights {path}: not a fer-edge classifier (no backbone/gap layers)")
    if model.name.startswith("fer_") and model.name[4:] != backbone:
        raise FerEdgeError(f"--weights {path} holds a {model.name[4:]} model; use --backbone {model.name[4:]}")
    if input_size and input_size != int(model.input_shape[1]):
        from fer_edge.train.backbones import resize_input

        resize_input(model, input_size)  # fails here, before any data is read, if the weights cannot move
        return input_size
    return int(model.input_shape[1])


def check_imagenet(backbone: str, size: int) -> None:
    """Build the backbone with ImageNet weights once, so an offline machine fails before any data is read."""
    import contextlib
    import io

    from fer_edge.train.backbones import build_classifier

    with contextlib.redirect_stdout(io.StringIO()):  # keras prints "Downloading data from ..." first
        build_classifier(BACKBONES.get(backbone), 2, "imagenet", size)
    print(f"ImageNet weights for {backbone}: ready", flush=True)


# ----------------------------------------------------------------------------------------------- stages


@dataclass
class StageOutcome:
    """What a finished stage hands on: its model, classes and the numbers for the summary."""

    model_path: Path
    classes: tuple[str, ...]
    summary: dict


def _mistakes(model: object, faces01: np.ndarray, y_true: np.ndarray, probs: np.ndarray, limit: int,
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


def _save_npz(path: Path, arrays: dict) -> None:
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


class _Ctx:
    """Shared state of one chain run (config, progress bar, extra callbacks)."""

    def __init__(self, cfg: ChainConfig, bar: object, callbacks: list | None) -> None:
        self.cfg, self.bar, self.callbacks = cfg, bar, callbacks

    def say(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)


def _plan(cfg: ChainConfig, stage: str, backbone: str, ds: FaceDataset, init: str | None, folds: int | None) -> dict:
    plan = {"backbone": backbone, "stage": stage, "protocol": STAGES.get(stage).protocol, "folds": folds,
            "fold_epochs": cfg.fold_epochs_for(stage), "val_fraction": cfg.val_fraction, "limit": cfg.limit,
            "config": asdict(cfg.stage_config(stage, backbone)), "init": init,
            "data_sha256": reports.fingerprint(ds)["sha256"]}
    return json.loads(json.dumps(plan))  # as it reads back from plan.json


def _check_resume(folder: Path, plan: dict) -> None:
    f = folder / "plan.json"
    if not f.is_file():
        atomic.write_json(f, plan)
        return
    old = json.loads(f.read_text())
    # a setting added to StageConfig after the run started reads as its default, so such runs still resume
    defaults = json.loads(json.dumps(asdict(StageConfig())))
    old["config"] = {**{k: v for k, v in defaults.items() if k in plan.get("config", {})}, **old.get("config", {})}
    if "augment" in old["config"]:  # runs from before the levels said true/false
        old["config"]["augment"] = augment_level(old["config"]["augment"])
    diff = sorted(k for k in set(old) | set(plan) if old.get(k) != plan.get(k))
    if "config" in diff:
        diff.remove("config")
        diff += sorted(f"config.{k}" for k in set(old["config"]) | set(plan["config"])
                       if old["config"].get(k) != plan["config"].get(k))
    if diff:
        raise FerEdgeError(f"{folder}: --resume with different settings than the run there ({', '.join(diff)}); "
                           "use the same options or another --out")


def run_stage(ctx: _Ctx, backbone: str, stage: str, ds: FaceDataset, folder: Path, init: str | None,
              init_classes: tuple[str, ...] | None) -> StageOutcome:
    """Train and score one stage into ``folder``; a finished stage (run.json) is reused on --resume."""
    import keras

    cfg = ctx.cfg
    spec = STAGES.get(stage)
    cv = spec.protocol in ("kfold", "loso")
    k = None if not cv else cfg.folds_for(stage) or (spec.folds or None)
    plan = _plan(cfg, stage, backbone, ds, init, k)
    run_file = folder / "run.json"
    if cfg.resume and run_file.is_file():
        run = json.loads(run_file.read_text())
        if run.get("status") == "finished":
            _check_resume(folder, plan)
            ctx.say(f"{backbone}/{stage}: finished earlier, reusing {folder / 'model.keras'}")
            ctx.bar.update(run.get("units", 1))
            return StageOutcome(folder / "model.keras", tuple(run["classes"]), run["summary"])
    folder.mkdir(parents=True, exist_ok=True)
    _check_resume(folder, plan)
    sc = cfg.stage_config(stage, backbone)
    if init is None and cfg.weights not in ("none", "imagenet"):
        init = cfg.weights
    if init is None:
        sc = replace(sc, weights=cfg.weights)
    else:
        sc = replace(sc, weights="none", input_size=sc.input_size or _input_size(init))
    classes = ds.classes
    t0 = time.time()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    timings: dict = {}
    head, src_classes = ("new" if init is None else None), init_classes

    def make_init(seed: int) -> object | None:
        nonlocal head, src_classes
        if init is None:
            return None
        model, head, src_classes = start_model(init, classes, sc.dropout, seed, init_classes)
        return model

    fold_info = None
    if not cv:
        train, val, test = official_parts(ds, cfg.val_fraction, sc.seed)
        ctx.bar.set_description(f"{backbone}/{stage}")
        ctx.say(f"== {backbone} / {stage}: {len(train)} train, {len(val)} val, {len(test)} test faces "
                f"({PROTOCOLS[spec.protocol]})")
        res = train_stage(train, val, sc, folder, init=make_init(sc.seed), resume=cfg.resume,
                          callbacks=ctx.callbacks, verbose=0)
        timings["train_seconds"] = res.seconds
        t_eval = time.time()
        model = _load(res.model_path)
        from fer_edge.train.evaluate import evaluate

        ev = evaluate(model, test, fgsm_epsilon=sc.adv_epsilon)
        x = to_model_input(test.images, int(model.input_shape[1]))
        cams = _mistakes(model, x, ev.y_true, ev.probs, cfg.gradcam_faces, test.labelled().subjects)
        y_true, y_pred, fgsm = ev.y_true, ev.y_pred, ev.fgsm_accuracy
        timings["eval_seconds"] = time.time() - t_eval
        history, best_val = res.history, res.best_val_accuracy
        units = 1
        ctx.bar.update(1)
    else:
        folds = cv_folds(ds, spec.protocol, k, sc.seed)
        what = (f"leave-one-subject-out, {len(folds)} folds" if spec.protocol == "loso" and k is None
                else f"{len(folds)}-fold by subject")
        ctx.say(f"== {backbone} / {stage}: {len(ds)} faces, {len(np.unique(ds.subjects))} subjects, {what}")
        fold_sc = replace(sc, epochs=cfg.fold_epochs_for(stage))
        results, cam_parts = [], []
        t_folds = time.time()
        for i, (tr, te) in enumerate(folds):
            ctx.bar.set_description(f"{backbone}/{stage} fold {i + 1}/{len(folds)}")
            r, cam = _run_fold(ctx, ds, folder / "folds" / f"fold_{i + 1:02d}", i, tr, te, fold_sc, make_init)
            results.append(r)
            cam_parts.append(cam)
            ctx.bar.update(1)
            keras.backend.clear_session()
        order = np.concatenate([r["test_index"] for r in results])
        y_true = ds.local_labels()[order]
        y_pred = np.concatenate([r["y_pred"] for r in results]).astype(np.int64)
        sizes = np.array([len(r["test_index"]) for r in results])
        fgsm = float(np.sum([r["fgsm_accuracy"] * n for r, n in zip(results, sizes, strict=True)]) / sizes.sum())
        cams = _pick_mistakes(cam_parts, cfg.gradcam_faces)
        from fer_edge.train.evaluate import fold_stats

        fold_info = fold_stats([r["accuracy"] for r in results])
        fold_info["test_subjects"] = [r["test_subjects"] for r in results]
        transfer = init is not None or sc.weights != "none"
        fold_info["fold_epochs"] = sum(p.epochs for p in fold_sc.resolved_phases(transfer))
        timings["fold_seconds"] = [r["seconds"] for r in results]
        t0 -= sum(timings["fold_seconds"]) - (time.time() - t_folds)  # count folds finished before a --resume
        # the model handed on: all subjects, a subject-held-out part for validation (never a test subject)
        ctx.bar.set_description(f"{backbone}/{stage} final model")
        tr, va = subject_holdout(ds, np.arange(len(ds)), cfg.val_fraction, sc.seed)
        ctx.say(f"-- {backbone} / {stage}: final model on {len(tr)} faces, validating on {len(va)} faces of "
                f"{len(np.unique(ds.subjects[va]))} held-out subject(s)")
        res = train_stage(ds.take(tr), ds.take(va), sc, folder, init=make_init(sc.seed), resume=cfg.resume,
                          callbacks=ctx.callbacks, verbose=0)
        timings["train_seconds"] = res.seconds
        history, best_val = res.history, res.best_val_accuracy
        units = len(folds) + 1
        ctx.bar.update(1)

    from fer_edge.train.evaluate import metrics

    m = metrics(y_true, y_pred, classes)
    title = f"{backbone} / {stage}"
    full_hist = json.loads((folder / "history.json").read_text())
    reports.write_history_csv(full_hist, folder / "history.csv")
    reports.plot_curves(full_hist, folder / "curves.png", title + (" (final model)" if cv else ""))
    reports.plot_confusion(np.asarray(m["confusion"]), classes, folder / "confusion.png",
                           f"{title}: " + (f"pooled over {fold_info['folds']} folds" if cv else "test set"))
    reports.plot_gradcam_grid(cams["faces"], cams["heats"], cams["y_true"], cams["y_pred"], cams["conf"], classes,
                              folder / "gradcam.png", f"{title}: most confident mistakes (Grad-CAM of the prediction)")
    start = "from " + ("the previous stage" if init is not None else f"weights {sc.weights}")
    protocol_text = (f"{PROTOCOLS[spec.protocol]} ({fold_info['folds']} folds, up to {fold_info['fold_epochs']} "
                     f"epochs each, {start})" if cv else f"{PROTOCOLS[spec.protocol]} ({m['n']} faces)")
    report = {"backbone": backbone, "stage": stage, "dataset": ds.name, "protocol": spec.protocol,
              "protocol_text": protocol_text, "classes": list(classes), "metrics": m, "folds": fold_info,
              "fgsm_accuracy": fgsm, "fgsm_epsilon": sc.adv_epsilon, "adversarial": sc.adversarial,
              "best_val_accuracy": best_val}
    reports.write_report(report, folder)
    export_saved_model(_load(folder / "model.keras"), folder / "saved_model")
    summary = {"accuracy": fold_info["mean"] if cv else m["accuracy"], "std": fold_info["std"] if cv else None,
               "folds": fold_info["folds"] if cv else None, "pooled_accuracy": m["accuracy"],
               "macro_f1": m["macro_f1"], "macro_recall": m["macro_recall"], "fgsm_accuracy": fgsm,
               "adversarial": sc.adversarial, "best_val_accuracy": best_val,
               "epochs": len(history.get("loss", [])), "seconds": time.time() - t0, "status": "finished",
               "model": str(folder / "model.keras")}
    timings.update(started=started, finished=time.strftime("%Y-%m-%dT%H:%M:%S"), seconds=time.time() - t0)
    fps = [f for f in full_hist.get("faces_per_second", []) if f == f]  # training faces/s per epoch, NaN = not kept
    timings["faces_per_second"] = float(np.median(fps)) if fps else None
    run = {"status": "finished", "backbone": backbone, "stage": stage, "classes": list(classes),
           "input_size": int(sc.input_size or BACKBONES.get(backbone).input_size), "protocol": spec.protocol,
           "plan": plan, "config": {**plan["config"], "chain": cfg.to_dict()},
           "init": {"from": init or cfg.weights, "classes": list(src_classes) if src_classes else None,
                    "head": head}, "data": reports.fingerprint(ds), "versions": reports.versions(),
           "timings": timings, "summary": summary, "units": units, "distribute": distribute.current().describe()}
    atomic.write_json(run_file, run)
    last = folder / "ckpt" / "last.keras"
    if last.is_file():
        last.unlink()  # only a finished stage gets here; run.json marks it done for --resume
    ctx.say(f"{backbone}/{stage}: {reports.cell(summary)} (macro F1 {m['macro_f1']:.3f}, FGSM@{sc.adv_epsilon} "
            f"{fgsm:.3f}) -> {folder}")
    keras.backend.clear_session()
    return StageOutcome(folder / "model.keras", classes, summary)


def _run_fold(ctx: _Ctx, ds: FaceDataset, folder: Path, i: int, tr: np.ndarray, te: np.ndarray, sc: StageConfig,
              make_init: object) -> tuple[dict, dict]:
    """Train on the fold's training subjects (a few held out for validation), score on its test subjects."""
    result_file, cam_file = folder / "result.json", folder / "gradcam.npz"
    cfg = ctx.cfg
    if result_file.is_file() and cam_file.is_file():
        r = json.loads(result_file.read_text())
        with np.load(cam_file) as z:
            cam = {k: z[k] for k in z.files}
        _clean_fold(folder, cfg.keep_fold_models)
        return r, cam
    t0 = time.time()
    tr_i, va_i = subject_holdout(ds, tr, cfg.val_fraction, sc.seed + i + 1)
    res = train_stage(ds.take(tr_i), ds.take(va_i), sc, folder, init=make_init(sc.seed + i), resume=cfg.resume,
                      callbacks=ctx.callbacks, verbose=0)
    from fer_edge.train.adversarial import fgsm_accuracy
    from fer_edge.train.evaluate import predict

    model = _load(res.model_path)
    test = ds.take(te)
    x = to_model_input(test.images, int(model.input_shape[1]))
    y = test.local_labels()
    probs = predict(model, x)
    acc = float(np.mean(probs.argmax(axis=1) == y))
    r = {"fold": i + 1, "test_subjects": sorted(set(map(str, test.subjects))),
         "val_subjects": sorted(set(map(str, ds.subjects[va_i]))), "train_faces": len(tr_i), "val_faces": len(va_i),
         "test_index": te.tolist(), "y_pred": probs.argmax(axis=1).tolist(), "accuracy": acc,
         "fgsm_accuracy": fgsm_accuracy(model, x, y, sc.adv_epsilon), "best_val_accuracy": res.best_val_accuracy,
         "epochs": len(res.history.get("loss", [])), "seconds": time.time() - t0}
    cam = _mistakes(model, x, y, probs, max(1, cfg.gradcam_faces // 2), test.subjects)
    _save_npz(cam_file, cam)
    atomic.write_json(result_file, r)
    ctx.say(f"   fold {i + 1}: test subjects {','.join(r['test_subjects'][:6])}"
            f"{'...' if len(r['test_subjects']) > 6 else ''}  accuracy {acc:.3f}")
    _clean_fold(folder, cfg.keep_fold_models)
    return r, cam


def _clean_fold(folder: Path, keep: bool) -> None:
    """A scored fold keeps its numbers and history; its checkpoints (tens of MB) go unless asked to keep them."""
    if keep:
        return
    shutil.rmtree(folder / "ckpt", ignore_errors=True)
    (folder / "model.keras").unlink(missing_ok=True)


def _load(path: Path) -> object:
    from fer_edge.train.backbones import load_model

    return load_model(path)


def _input_size(path: str | Path) -> int:
    return int(_load(Path(path)).input_shape[1])


# ----------------------------------------------------------------------------------------------- the chain


@dataclass
class ChainResult:
    """Per backbone, per stage: the summary numbers; plus where the summary files are."""

    out: Path
    results: dict[str, dict[str, dict]]
    failed: dict[str, str] = field(default_factory=dict)
    chief: bool = True            # False on a multiworker run's other workers (they wrote only a temporary folder)


def preflight(cfg: ChainConfig, given: tuple[str, ...] = ()) -> dict[str, Path]:
    """Check options, output folders and data paths before anything heavy; returns the data path of each stage
    whose dataset is not ``given`` in memory."""
    cfg.validate()
    paths = {name: resolve_data(name, cfg.data) for name in cfg.chain if name not in given}
    out = Path(cfg.out)
    if cfg.resume and not (out / "chain.json").is_file() and not any(out.glob("*/*/plan.json")):
        raise FerEdgeError(f"{out}: --resume, but no run was started there (no chain.json or stage plan.json); "
                           "drop --resume to start one, or give the --out of the run to continue")
    if not cfg.resume:
        for b in cfg.backbones:
            for s in cfg.chain:
                d = Path(cfg.out) / b / s
                if d.exists() and any(d.iterdir()):
                    raise FerEdgeError(f"{d} already holds a run; pass --resume to continue it or choose another --out")
    return paths


def run_chain(cfg: ChainConfig, datasets: Mapping[str, FaceDataset] | None = None,
              callbacks: list | None = None) -> ChainResult:
    """Run every backbone through every stage of ``cfg.chain``; ``datasets`` may supply stage data directly
    (tests, notebooks) instead of reading it from disk."""
    from tqdm import tqdm

    datasets = dict(datasets or {})
    paths = preflight(cfg, tuple(datasets))
    dist = distribute.setup(cfg.distribute)  # before other TensorFlow work; a multiworker cluster forms here
    # ImageNet / start-model problems show before any data is read
    sizes = {}
    for b in cfg.backbones:
        spec = BACKBONES.get(b)
        sizes[b] = cfg.stage.input_size or spec.input_size
        if cfg.weights == "imagenet":
            check_imagenet(b, sizes[b])
        elif cfg.weights != "none":
            sizes[b] = check_start_weights(cfg.weights, b, cfg.stage.input_size)
    for s, p in paths.items():
        print(f"reading {s} from {p} ...", flush=True)
        datasets[s] = load_stage_data(s, p, cfg.limit, cfg.stage.seed)
    for s in cfg.chain:
        if s not in paths:
            ds = datasets[s].labelled()
            datasets[s] = subset(ds, cfg.limit, cfg.stage.seed) if cfg.limit else ds

    units = 0
    for s in cfg.chain:
        spec = STAGES.get(s)
        if spec.protocol == "official":
            units += 1
        else:
            ds, k = datasets[s], cfg.folds_for(s) or spec.folds or None
            n = k if k else len(np.unique(ds.subjects)) if ds.subjects is not None else 1
            units += n + 1
    results: dict[str, dict[str, dict]] = {b: {} for b in cfg.backbones}
    failed: dict[str, str] = {}
    bar = tqdm(total=units * len(cfg.backbones), unit="model", desc="train", dynamic_ncols=True, delay=1)
    ctx = _Ctx(cfg, bar, callbacks)
    stack = contextlib.ExitStack()
    try:
        # only the chief writes --out; another worker trains in step into a temporary folder it removes
        out = stack.enter_context(distribute.run_folder(Path(cfg.out), dist, cfg.resume))
        if not dist.chief:
            ctx.say(f"worker {dist.task_index} of {dist.workers}: training in step with the chief, which writes "
                    f"{cfg.out}")
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / "chain.json", cfg.to_dict())
        for b in cfg.backbones:
            init, init_classes = None, None
            try:
                for s in cfg.chain:
                    o = run_stage(ctx, b, s, datasets[s], out / b / s, init, init_classes)
                    results[b][s] = o.summary
                    init, init_classes = str(o.model_path), o.classes
                    reports.write_summary(out, cfg.chain, results)
            except Exception as exc:  # one backbone failing never stops the rest of a grid
                if len(cfg.backbones) == 1:
                    raise
                failed[b] = f"{type(exc).__name__}: {exc}"
                ctx.say(f"{b}: failed ({failed[b][:200]}); going on with the other backbones")
                for s in cfg.chain:
                    results[b].setdefault(s, {"status": "failed", "error": failed[b][:300]})
            reports.write_summary(out, cfg.chain, results)
    finally:
        bar.delay = 0  # tqdm skips the closing newline of a bar drawn within its delay; an error line may follow
        bar.close()
        stack.close()
    return ChainResult(Path(cfg.out), results, failed, chief=dist.chief)
