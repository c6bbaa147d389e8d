"""The chained transfer ImageNet/none -> FERPlus -> RAF-DB -> JAFFE -> CK+ (any subsequence), for one backbone or
a grid of them. Each stage starts from the previous stage's best model (head rebuilt when the class set changes,
``fer_edge.train.surgery``) and is scored on a split that means something: the official test set, or
subject-independent folds (``fer_edge.train.scoring``); ``fer_edge.train.outputs`` writes what it leaves.

Layout: ``OUT/<backbone>/<stage>/`` per stage (model.keras, saved_model/, reports; ``folds/fold_NN/`` inside for
CV stages), ``OUT/summary.{json,md}``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.data.types import FaceDataset
from fer_edge.errors import FerEdgeError
from fer_edge.train import distribute, outputs, reports
from fer_edge.train.backbones import BACKBONES
from fer_edge.train.config import STAGES, ChainConfig
from fer_edge.train.folds import load_stage_data, resolve_data, subset
from fer_edge.train.scoring import score_folds, score_official
from fer_edge.train.settings import StageConfig, augment_level
from fer_edge.train.stage import StageContext, StageJob, StageOutcome, StartModel
from fer_edge.train.surgery import check_imagenet, check_start_weights, saved_input_size

__all__ = ["ChainResult", "StageOutcome", "preflight", "run_chain", "run_stage"]

# ----------------------------------------------------------------------------------------------- stages


def _plan(cfg: ChainConfig, stage: str, backbone: str, ds: FaceDataset, init: str | None, folds: int | None) -> dict:
    plan = {"backbone": backbone, "stage": stage, "protocol": STAGES.get(stage).protocol, "folds": folds,
            "fold_epochs": cfg.fold_epochs_for(stage), "val_fraction": cfg.val_fraction, "limit": cfg.limit,
            "config": asdict(cfg.stage_config(stage, backbone)), "init": init,
            "data_sha256": reports.fingerprint(ds)["sha256"], "tta": cfg.tta}
    return json.loads(json.dumps(plan))  # as it reads back from plan.json


def _check_resume(folder: Path, plan: dict) -> None:
    f = folder / "plan.json"
    if not f.is_file():
        atomic.write_json(f, plan)
        return
    old = json.loads(f.read_text())
    old, plan = {"tta": "none", **old}, {"tta": "none", **plan}  # plans from before tta was a setting
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


def run_stage(ctx: StageContext, backbone: str, stage: str, ds: FaceDataset, folder: Path, init: str | None,
              init_classes: tuple[str, ...] | None) -> StageOutcome:
    """Train and score one stage into ``folder``; a finished stage (run.json) is reused on --resume."""
    import keras

    cfg = ctx.cfg
    spec = STAGES.get(stage)
    cv = spec.protocol in ("kfold", "loso")
    k = None if not cv else cfg.folds_for(stage) or (spec.folds or None)
    plan = _plan(cfg, stage, backbone, ds, init, k)
    done = outputs.read_finished(folder) if cfg.resume else None
    if done is not None:
        _check_resume(folder, plan)
        ctx.say(f"{backbone}/{stage}: finished earlier, reusing {folder / 'model.keras'}")
        ctx.bar.update(done[1])
        return done[0]
    folder.mkdir(parents=True, exist_ok=True)
    _check_resume(folder, plan)
    sc = cfg.stage_config(stage, backbone)
    if init is None and cfg.weights not in ("none", "imagenet"):
        init = cfg.weights
    if init is None:
        sc = replace(sc, weights=cfg.weights)
    else:
        sc = replace(sc, weights="none", input_size=sc.input_size or saved_input_size(init))
    job = StageJob(backbone, stage, ds, folder, sc, init, plan, k, time.time(), time.strftime("%Y-%m-%dT%H:%M:%S"))
    start = StartModel(init, ds.classes, sc.dropout, init_classes)
    score = (score_folds if cv else score_official)(ctx, job, start)
    outcome = outputs.write_stage(ctx, job, score)
    keras.backend.clear_session()
    return outcome


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
    ctx = StageContext(cfg, bar, callbacks)
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
