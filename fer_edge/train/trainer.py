"""Training one stage: phases of progressive unfreezing, soft or hard labels, class weights, augmentation,
best-checkpoint, early stopping, and a resumable per-epoch checkpoint."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.data.types import FaceDataset
from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import to_model_input  # also reached here by older callers
from fer_edge.train import distribute, precision
from fer_edge.train.backbones import BACKBONES, build_classifier, unfreeze
from fer_edge.train.settings import AUGMENT_LEVELS as AUGMENT_LEVELS  # StageConfig and its choices moved there
from fer_edge.train.settings import CLASS_WEIGHTS, SCHEDULES, Phase, StageConfig, augment_level
from fer_edge.train.surgery import rehead, resize_input, start_model


@dataclass
class StageResult:
    model_path: Path
    classes: tuple[str, ...]
    best_val_accuracy: float
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> np.ndarray:
    """Per-class weights (mean 1 over the samples): none, sqrt (inverse square root of frequency), balanced."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if mode == "none":
        w = np.ones(n_classes)
    elif mode in ("sqrt", "balanced"):
        inv = np.where(counts > 0, counts.max() / np.clip(counts, 1, None), 0.0)
        w = np.sqrt(inv) if mode == "sqrt" else inv
    else:
        raise FerEdgeError(f"unknown class weighting {mode!r}; choose {', '.join(CLASS_WEIGHTS)}")
    return w / max(float((w[labels]).mean()), 1e-8)


def floor_shares(y: np.ndarray, floor: float) -> np.ndarray:
    """Distributions ``y`` without the shares below ``floor``, renormalized (a row with none left stays as it was)."""
    kept = np.where(y >= floor, y, 0.0)
    total = kept.sum(axis=1, keepdims=True)
    return np.where(total > 0, kept / np.clip(total, 1e-8, None), y)


def targets(ds: FaceDataset, soft: bool, smoothing: float, floor: float = 0.0) -> np.ndarray:
    """(N, K) float32 targets over ``ds.classes``: vote distributions if ``soft`` and present (shares under
    ``floor`` dropped), else one-hot."""
    k = len(ds.classes)
    if soft and ds.soft is not None:
        y = floor_shares(ds.local_soft(), floor) if floor else ds.local_soft()
    else:
        y = np.eye(k, dtype=np.float32)[ds.local_labels()]
    if smoothing:
        y = y * (1 - smoothing) + smoothing / k
    return y.astype(np.float32)


def augmenter(seed: int, level: str = "strong") -> object:
    """Face-safe augmentation, run in the input pipeline (never inside the exported model). ``light`` keeps only
    the flip and a small shift, for a last run that polishes a model on faces close to the real ones; ``heavy`` is
    the small from-scratch models' recipe: rotation up to 30 degrees, shift, shear and zoom up to 20% (brightness
    0.2-1.2 is applied multiplicatively by ``make_dataset``)."""
    import keras
    from keras import layers

    if level == "heavy":
        return keras.Sequential([
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(30 / 360, fill_mode="reflect", seed=seed + 1),
            layers.RandomTranslation(0.2, 0.2, fill_mode="reflect", seed=seed + 2),
            layers.RandomShear(0.2, 0.2, fill_mode="reflect", seed=seed + 3),
            layers.RandomZoom(0.2, fill_mode="reflect", seed=seed + 4),
        ], name="augment")
    if level == "light":
        return keras.Sequential([
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.05, 0.05, fill_mode="reflect", seed=seed + 2),
        ], name="augment")
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="reflect", seed=seed + 1),
        layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed + 2),
        layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 3),
        layers.RandomContrast(0.3, seed=seed + 4),
        layers.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=seed + 5),
    ], name="augment")


def random_erasing(x: object, seed: int, p: float = 0.5) -> object:
    """Erase one random rectangle (up to a quarter of the face) per image with probability ``p``."""
    import tensorflow as tf

    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    eh = tf.cast(tf.random.uniform([n], 0.1, 0.5) * hf, tf.int32)
    ew = tf.cast(tf.random.uniform([n], 0.1, 0.5) * wf, tf.int32)
    y0 = tf.cast(tf.random.uniform([n]) * tf.cast(h - eh, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.uniform([n]) * tf.cast(w - ew, tf.float32), tf.int32)
    rows = tf.range(h)[None, :, None]
    cols = tf.range(w)[None, None, :]
    inside = ((rows >= y0[:, None, None]) & (rows < (y0 + eh)[:, None, None])
              & (cols >= x0[:, None, None]) & (cols < (x0 + ew)[:, None, None]))
    apply = tf.random.uniform([n]) < p
    mask = tf.cast(inside & apply[:, None, None], x.dtype)[..., None]
    return x * (1 - mask) + mask * tf.random.uniform(tf.shape(x), 0, 1, seed=seed)


def make_dataset(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, batch: int, train: bool,
                 augment: str | bool, seed: int) -> object:
    """Batched (x, y[, w]); training batches shuffled and augmented at ``augment`` level (strong adds erasing).

    Sized for accelerators: the arrays are already in memory (so no ``cache()``, which would hold a second copy),
    augmentation runs on whole batches in parallel (AUTOTUNE) and batches are prefetched; under a tf.distribute
    strategy each worker takes its share of the elements (auto-shard policy DATA) and ``batch`` is the global one.
    """
    import tensorflow as tf

    level = augment_level(augment)
    parts = (x, y) if w is None else (x, y, w)
    ds = tf.data.Dataset.from_tensor_slices(parts).with_options(distribute.shard_options())
    if train:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    if train and level != "none":
        aug = augmenter(seed, level)

        def apply(xb: object, *rest: object) -> tuple:
            xb = aug(xb, training=True)
            if level == "heavy":
                xb = xb * tf.random.uniform([tf.shape(xb)[0], 1, 1, 1], 0.2, 1.2, seed=seed + 5)
            xb = tf.clip_by_value(xb, 0.0, 1.0)
            return (random_erasing(xb, seed) if level == "strong" else xb, *rest)

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _lr_schedule(cfg: StageConfig, phase: Phase, steps: int, plateau: dict | None = None) -> object:
    """Cosine (warm-up, then decay over the phase) or plateau: a constant LR that the epoch callback lowers; on
    --resume the plateau LR continues from the checkpoint's state."""
    import keras

    if cfg.schedule == "plateau":
        return float(plateau["lr"]) if plateau and plateau.get("phase") == phase.name else phase.lr
    if cfg.schedule != "cosine":
        raise FerEdgeError(f"unknown schedule {cfg.schedule!r}; choose {' or '.join(SCHEDULES)}")
    total = max(1, phase.epochs * steps)
    warm = min(steps, total // 10)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warm else phase.lr, decay_steps=total - warm, alpha=0.01,
        warmup_target=phase.lr if warm else None, warmup_steps=warm)


class _EpochLog:
    """Keras callback: one line per epoch with the total ETA, plus the resumable checkpoint."""

    def __new__(cls, *args: object, **kwargs: object) -> object:  # built lazily to keep keras import local
        import keras

        class Impl(keras.callbacks.Callback):
            def __init__(self, state: dict, ckpt: Path, best_path: Path, total_epochs: int,
                         patience: int, keep: int = 0, plateau: tuple[int, float, float] | None = None,
                         faces: int = 0, origin: float | None = None) -> None:
                super().__init__()
                self.origin = time.time() if origin is None else origin  # seconds = now - origin, resumes included
                self.state, self.ckpt, self.best_path, self.keep = state, ckpt, best_path, keep
                self.plateau, self.faces, self.t_epoch, self.t_train = plateau, faces, time.time(), None
                self.total, self.patience, self.t0 = total_epochs, patience, time.time()
                self.done0 = state["epochs_done"]

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.t_epoch, self.t_train = time.time(), None

            def on_test_begin(self, logs: dict | None = None) -> None:  # validation starts: training time ends
                self.t_train = self.t_train or time.time()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                logs = dict(logs or {})
                st = self.state
                if self.faces:  # training faces per second over all replicas, validation not counted
                    logs["faces_per_second"] = self.faces / max((self.t_train or time.time()) - self.t_epoch, 1e-9)
                    fps = st["history"].setdefault("faces_per_second", [])
                    fps.extend([math.nan] * (st["epochs_done"] - len(fps)))  # epochs run before it was recorded
                for k, v in logs.items():
                    st["history"].setdefault(k, []).append(float(v))
                st["history"].setdefault("phase", []).append(st["phase"])
                st["epochs_done"] += 1
                st["phase_epoch"] = epoch + 1
                st["seconds"] = time.time() - self.origin  # so a run resumed on another machine keeps its time
                acc = float(logs.get("val_accuracy", float("nan")))
                if acc > st["best"]:
                    st["best"], st["since_best"] = acc, 0
                    with atomic.atomic_path(self.best_path) as tmp:
                        _plain(self.model).save(tmp)
                else:
                    st["since_best"] += 1
                if self.plateau:
                    self._plateau_step(float(logs.get("val_loss", float("nan"))))
                with atomic.atomic_path(self.ckpt / "last.keras") as tmp:
                    _plain(self.model).save(tmp)
                if self.keep:
                    _keep_epoch_weights(self.model, self.ckpt / "swa", st["epochs_done"], self.keep)
                atomic.write_json(self.ckpt / "state.json", st)
                done = st["epochs_done"] - self.done0
                per = (time.time() - self.t0) / max(done, 1)
                left = per * (self.total - st["epochs_done"])
                print(f"[{st['phase']}] epoch {st['epochs_done']}/{self.total}  loss {logs.get('loss', 0):.4f}  "
                      f"val_acc {acc:.4f}  best {st['best']:.4f}  {per:.0f}s/epoch  "
                      f"{logs.get('faces_per_second', 0):.0f} faces/s  ETA {left / 60:.1f} min",
                      flush=True)
                if st["since_best"] >= self.patience:
                    self.model.stop_training = True

            def _plateau_step(self, val_loss: float) -> None:
                """ReduceLROnPlateau whose counters live in the checkpoint state, so --resume keeps the LR."""
                patience, factor, min_lr = self.plateau
                opt = self.model.optimizer
                lr = float(np.asarray(opt.learning_rate))
                p = self.state.get("plateau")
                if not p or p.get("phase") != self.state["phase"]:
                    p = {"phase": self.state["phase"], "best_loss": float("inf"), "wait": 0}
                if val_loss < p["best_loss"]:
                    p["best_loss"], p["wait"] = val_loss, 0
                else:
                    p["wait"] += 1
                    if p["wait"] >= patience and lr > min_lr:
                        lr = max(lr * factor, min_lr)
                        opt.learning_rate.assign(lr)
                        p["wait"] = 0
                        print(f"val_loss has not improved for {patience} epochs: learning rate -> {lr:.2e}",
                              flush=True)
                p["lr"] = lr
                self.state["plateau"] = p
                self.state["history"].setdefault("lr", []).append(lr)

        return Impl(*args, **kwargs)


def train_stage(train: FaceDataset, val: FaceDataset, cfg: StageConfig, out_dir: str | Path,
                init: object | str | Path | None = None, resume: bool = False,
                verbose: int | None = None, callbacks: list | None = None) -> StageResult:
    """Train one stage on ``train`` (labelled faces), validating on ``val``; writes into ``out_dir``:
    model.keras (best by validation accuracy), history.json, and ckpt/ (last epoch, for ``resume``).

    ``init`` is a model (or .keras path) from an earlier stage: its weights are kept, and its head is
    rebuilt when the class set differs. ``callbacks`` are extra Keras callbacks run after the checkpointing one;
    ``cfg.adversarial`` > 0 trains with FGSM neighbours (the saved models stay plain classifiers).
    Under the strategy ``fer_edge.train.distribute.setup`` chose, the model trains on every replica with the global
    batch and scaled learning rate of that module's rule; every worker calls this, each with its own ``out_dir``
    (``distribute.run_folder``).
    """
    import keras

    out = Path(out_dir)
    ckpt = out / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    spec = BACKBONES.get(cfg.backbone)
    size = cfg.input_size or spec.input_size
    train, val = train.labelled(), val.labelled()
    if len(train) == 0 or len(val) == 0:
        raise FerEdgeError(f"nothing to train on: {len(train)} training and {len(val)} validation faces")
    classes = train.classes
    keras.utils.set_random_seed(cfg.seed)

    state_file = ckpt / "state.json"
    state: dict = {"phase_index": 0, "phase": "", "phase_epoch": 0, "epochs_done": 0,
                   "best": -1.0, "since_best": 0, "history": {}, "config": _cfg_dict(cfg)}
    model = None
    if resume and state_file.is_file() and (ckpt / "last.keras").is_file():
        state = json.loads(state_file.read_text())
        model = keras.models.load_model(ckpt / "last.keras", compile=False)
        print(f"resuming at epoch {state['epochs_done']} (phase {state['phase']}, best {state['best']:.4f})")
    transfer = init is not None or cfg.weights not in ("none",)
    if model is None:
        model = _initial_model(spec, cfg, classes, size, init)
    policy = precision.resolve(cfg.precision)
    model = precision.with_policy(model, policy)
    dist = distribute.current()
    model = _in_scope(model, dist)

    phases = tuple(replace(p, lr=dist.lr(p.lr)) for p in cfg.resolved_phases(transfer))
    total = sum(p.epochs for p in phases)
    t_start = time.time()
    origin = t_start - float(state.get("seconds", 0.0))  # the time of earlier processes of this run, from state.json
    xt, xv = to_model_input(train.images, size), to_model_input(val.images, size)
    yt = targets(train, cfg.soft_labels, cfg.label_smoothing, cfg.soft_floor)
    yv = targets(val, False, 0.0)
    if cfg.teacher:
        from fer_edge.train.distill import distilled_targets, ensemble_probabilities, teacher_paths

        tp = ensemble_probabilities(teacher_paths(cfg.teacher), train)
        yt = distilled_targets(yt, tp, cfg.teacher_weight)
        agree = float((tp.argmax(1) == train.local_labels()).mean())
        print(f"teacher {cfg.teacher}: {cfg.teacher_weight:.0%} of the targets (it agrees with {agree:.1%} of the "
              f"{len(tp)} training labels)", flush=True)
    wt = class_weights(train.local_labels(), len(classes), cfg.class_weight)[train.local_labels()]
    batch = dist.global_batch(cfg.batch_size)
    dtrain = make_dataset(xt, yt, wt.astype(np.float32), batch, True, cfg.augment, cfg.seed)
    dval = make_dataset(xv, yv, None, dist.global_batch(256), False, False, cfg.seed)
    steps = math.ceil(len(xt) / batch)
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 0)

    for pi in range(state["phase_index"], len(phases)):
        phase = phases[pi]
        resumed_here = pi == state["phase_index"] and state["phase"] == phase.name
        start_epoch = state["phase_epoch"] if resumed_here else 0
        state.update(phase_index=pi, phase=phase.name, phase_epoch=start_epoch)
        if start_epoch >= phase.epochs or state["since_best"] >= cfg.patience:
            continue
        unfreeze(model, phase.unfreeze)
        fit_model = model
        with dist.scope():
            if cfg.adversarial:
                from fer_edge.train.adversarial import wrap

                fit_model = wrap(model, cfg.adversarial, cfg.adv_epsilon)
            optimizer = keras.optimizers.AdamW(_lr_schedule(cfg, phase, steps, state.get("plateau")),
                                               weight_decay=cfg.weight_decay)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            fit_model.compile(
                optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(),
                metrics=[keras.metrics.CategoricalAccuracy("accuracy")],
            )
        if start_epoch and cfg.schedule == "cosine":
            fit_model.optimizer.iterations.assign(start_epoch * steps)
        last_phase = pi == len(phases) - 1
        plateau = (cfg.plateau_patience, cfg.plateau_factor, cfg.min_lr) if cfg.schedule == "plateau" else None
        cbs = [_EpochLog(state, ckpt, out / "model.keras", total, cfg.patience, cfg.swa if last_phase else 0,
                         plateau, faces=len(xt), origin=origin)]
        with distribute.collectives_guard(dist):
            fit_model.fit(dtrain, validation_data=dval, epochs=phase.epochs, initial_epoch=start_epoch,
                          callbacks=cbs + list(callbacks or []), verbose=verbose)
        state["since_best"] = 0 if pi + 1 < len(phases) else state["since_best"]
    if cfg.swa and "swa" not in state:
        state["swa"] = _average_epochs(model, ckpt / "swa", cfg.swa, xt, dval, out / "model.keras", state["best"])
        state["best"] = max(state["best"], state["swa"]["val_accuracy"])
    state.update(phase_index=len(phases), finished=True)
    atomic.write_json(state_file, state)
    seconds = time.time() - origin
    hist = {k: v for k, v in state["history"].items() if k != "phase"}
    atomic.write_json(out / "history.json", state["history"])
    return StageResult(out / "model.keras", classes, float(state["best"]), hist, seconds)


def _initial_model(spec: object, cfg: StageConfig, classes: tuple[str, ...], size: int,
                   init: object | str | Path | None) -> object:
    weights = cfg.weights
    if init is None and weights not in ("none", "imagenet"):
        init = weights  # a checkpoint path
    if init is None:
        return build_classifier(spec, len(classes), weights, size, cfg.dropout)
    if isinstance(init, (str, Path)):  # a checkpoint: its head is rebuilt when its class names differ
        init = start_model(init, classes, cfg.dropout, cfg.seed)[0]
    elif int(init.output_shape[-1]) != len(classes):
        init = rehead(init, classes, cfg.dropout)  # a model in memory: no class names, every row fresh
    return resize_input(init, size)  # a 48 px model fine-tuned at --input-size 64: same weights, new input


def _in_scope(model: object, dist: distribute.Distribution) -> object:
    """The model with its variables made under ``dist``'s strategy (a copy, same weights); itself for one device."""
    if dist.strategy is None:
        return model
    import keras

    with dist.scope():
        copy = keras.Model.from_config(model.get_config())
        copy.set_weights(model.get_weights())
    return copy


def _keep_epoch_weights(model: object, folder: Path, epoch: int, keep: int) -> None:
    """Save this epoch's weights as folder/eNNNN.weights.h5 and drop all but the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".e{epoch:04d}.tmp.weights.h5"  # Keras wants the .weights.h5 ending
    _plain(model).save_weights(tmp)
    tmp.replace(folder / f"e{epoch:04d}.weights.h5")
    for old in sorted(folder.glob("e*.weights.h5"))[:-keep]:
        old.unlink()


def recompute_batchnorm(model: object, x: np.ndarray, batch: int = 256) -> None:
    """BatchNorm moving mean/variance := their averages over batches of ``x`` (model in training mode, eagerly),
    as weight averaging needs: the averaged weights never produced the statistics the layers hold."""
    import keras

    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in bns]
    order = np.random.default_rng(0).permutation(len(x))
    for k, i in enumerate(range(0, max(len(x) - batch, 0) + 1, batch), start=1):
        for layer in bns:
            layer.momentum = (k - 1) / k  # a running average over the batches seen so far
        model(x[order[i:i + batch]], training=True)
    for layer, m in zip(bns, saved, strict=True):
        layer.momentum = m


def kept_epochs(stage_dir: str | Path) -> list[Path]:
    """The epoch weights a stage trained with ``swa`` > 0 kept (ckpt/swa/eNNNN.weights.h5), oldest first."""
    return sorted((Path(stage_dir) / "ckpt" / "swa").glob("e*.weights.h5"))


def average_weights(model: object, files: list[Path], x_train: np.ndarray) -> object:
    """SWA: ``model`` given the mean of the weight files ``files`` (saved from its architecture), then its BatchNorm
    statistics recomputed on ``x_train``. Changes and returns ``model``."""
    weights = []
    for f in files:
        model.load_weights(f)
        weights.append([np.asarray(w) for w in model.get_weights()])
    model.set_weights([np.mean(ws, axis=0) for ws in zip(*weights, strict=True)])
    recompute_batchnorm(model, x_train)
    return model


def _average_epochs(model: object, folder: Path, n: int, x_train: np.ndarray, dval: object, best_path: Path,
                    best: float) -> dict:
    """SWA: average the weights of the last ``n`` epochs, recompute BatchNorm statistics, validate; the average
    replaces the best-epoch model only if it validates at least as well. The epoch weights stay in ``folder`` for
    ``fer-edge average`` (fer_edge.train.average) to try other counts."""
    files = sorted(folder.glob("e*.weights.h5"))[-n:]
    if not files:  # e.g. resumed after the averaging had already replaced the model
        return {"epochs": 0, "val_accuracy": best, "best_epoch_val_accuracy": best, "used": False}
    avg = average_weights(_plain(model), files, x_train)
    avg.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    acc = float(avg.evaluate(dval, verbose=0, return_dict=True)["categorical_accuracy"])
    used = acc >= best
    if used:
        with atomic.atomic_path(best_path) as tmp:
            avg.save(tmp)
    print(f"SWA of the last {len(files)} epochs: val_acc {acc:.4f} vs best epoch {best:.4f} -> "
          f"{'kept' if used else 'not kept'}", flush=True)
    return {"epochs": len(files), "val_accuracy": acc, "best_epoch_val_accuracy": best, "used": used}


def _plain(model: object) -> object:
    """The classifier to save: the model itself, or the one inside an adversarial wrapper, in float32, without
    its optimizer (whose moments would triple the file; every load, --resume included, compiles afresh)."""
    import keras

    plain = precision.as_float32(getattr(model, "inner", model))
    if getattr(plain, "optimizer", None) is None and getattr(plain, "_distribute_strategy", None) is None:
        return plain  # else a copy: without the optimizer, and outside a tf.distribute strategy's variables
    copy = keras.Model.from_config(plain.get_config())  # clone_model would compile it with the same optimizer
    copy.set_weights(plain.get_weights())
    return copy


def _cfg_dict(cfg: StageConfig) -> dict:
    d = asdict(replace(cfg))
    d["phases"] = [asdict(p) for p in cfg.phases] if cfg.phases else None
    return d
