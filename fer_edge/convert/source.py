"""What is being converted: a .keras file or a training run folder, with the run's record (``fer_edge.run_record``:
classes, input spec, crop rule, dataset) where present."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fer_edge import run_record
from fer_edge.bundle import sha256_file
from fer_edge.errors import ModelError
from fer_edge.labels import EMOTIONS, canonical
from fer_edge.preprocess import DEFAULT_CROP, CropRule, InputSpec, model_input_spec
from fer_edge.redact import portable
from fer_edge.run_record import RunRecord

AUGMENT_PREFIX = "Random"  # keras.layers.RandomFlip, RandomRotation, ... (training-only)


@dataclass(frozen=True)
class ModelSource:
    """A model file and what its run says about it."""

    path: Path                       # the .keras file
    run_dir: Path | None             # folder holding it and its metadata, when it is a run
    meta: dict[str, Any] = field(default_factory=dict)   # run.json (or report.json) contents
    history: dict[str, Any] | None = None
    record: RunRecord | None = None  # the run record of ``meta`` (validated; read from it when not given)

    def __post_init__(self) -> None:
        if self.record is None and self.meta:
            where = str(self.run_dir / run_record.RUN_FILE) if self.run_dir else "run metadata"
            object.__setattr__(self, "record", run_record.from_dict(self.meta, where))

    @property
    def dataset_root(self) -> str | None:
        """Root folder of the data the run trained on, when its record names one."""
        ds = self.record.dataset if self.record else None
        return ds.root if ds else None

    @property
    def dataset_name(self) -> str | None:
        ds = self.record.dataset if self.record else None
        return (ds.name or None) if ds else None

    @property
    def crop(self) -> CropRule:
        """The face-crop rule the run's training faces were cut by (the default without a record saying so)."""
        return self.record.crop if self.record else DEFAULT_CROP

    def classes(self, n_outputs: int, given: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """Class order: --classes, else the run record, else the canonical 8 for an 8-way head."""
        recorded = self.record.classes if self.record else None
        for cand, where in ((given, "--classes"), (recorded, "run metadata")):
            if cand:
                if len(cand) != n_outputs:
                    raise ModelError(f"{self.path}: {where} lists {len(cand)} classes but the model has "
                                     f"{n_outputs} outputs")
                return tuple(canonical(c) for c in cand)
        if n_outputs == len(EMOTIONS):
            return EMOTIONS
        raise ModelError(f"{self.path}: cannot tell the order of its {n_outputs} classes (no run.json beside it); "
                         "pass --classes a,b,c")

    def backbone(self, model: object) -> str:
        b = self.record.backbone if self.record else None
        if b:
            return b
        name = str(getattr(model, "name", "") or "model")
        return name.removeprefix("fer_")

    def input_spec(self, model: object) -> InputSpec:
        """The run record's input spec (it must fit the model's input), else what a fer-edge model takes: (H, W, C)
        float in [0, 1] (the backbone's own preprocessing is inside the model)."""
        shape = tuple(model.input_shape)
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ModelError(f"{self.path}: expected an image input (N, H, W, C), got {shape}")
        h, w, c = int(shape[1]), int(shape[2]), int(shape[3])
        if c not in (1, 3):
            raise ModelError(f"{self.path}: input has {c} channels; fer-edge models take 1 (gray) or 3 (RGB)")
        spec = self.record.input if self.record else None
        if spec is None:
            return replace(model_input_spec(h, c), width=w)
        if (spec.height, spec.width, spec.channels) != (h, w, c):
            raise ModelError(f"{self.path}: its run record says input {spec.height}x{spec.width}x{spec.channels} "
                             f"but the model takes {h}x{w}x{c}")
        return spec

    def provenance(self) -> dict[str, Any]:
        run = {k: self.meta[k] for k in ("record_version", "backbone", "stage", "protocol", "config", "summary",
                                          "timings", "best_val_accuracy", "versions") if k in self.meta}
        ds = self.record.dataset if self.record else None
        if ds and ds.root:
            run["dataset"] = {"name": self.dataset_name, "root": Path(ds.root).name,
                              **({"sha256": ds.sha256} if ds.sha256 else {})}
        if self.history:
            acc = self.history.get("val_accuracy") or []
            run["epochs"] = len(acc)
            run["best_val_accuracy"] = run.get("best_val_accuracy", max(acc) if acc else None)
        # portable: the model file relative to its run folder, folders by base name, the model by its sha256
        source = self.path.name if self.run_dir is None else self.path.resolve().relative_to(
            self.run_dir.resolve()).as_posix()
        return portable({"source": source, "source_sha256": sha256_file(self.path),
                         "run_dir": self.run_dir.resolve().name if self.run_dir else None, "run": run})


def open_source(path: str | Path) -> ModelSource:
    """A .keras file, or a run folder holding model.keras (directly or in its only stage subfolder)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or run folder")
    if path.is_dir():
        path = _model_in(path)
    if path.suffix not in (".keras", ".h5"):
        raise ModelError(f"{path}: not a Keras model file (.keras); pass a .keras file or a training run folder")
    folder = path.parent
    found = run_record.load(folder)  # a bad versioned record is one line; an unreadable older one a warning
    meta, record = (found[1], found[2]) if found else ({}, None)
    history = _read_json(folder / "history.json")
    is_run = bool(meta) or history is not None or (folder / "ckpt").is_dir()
    return ModelSource(path, folder if is_run else None, meta, history, record)


def _model_in(folder: Path) -> Path:
    """model.keras of a run folder; for a `fer-edge train` chain (chain.json) the last stage's of the chain."""
    if (folder / "model.keras").is_file():
        return folder / "model.keras"
    for chain_file, per_backbone in ((folder / "chain.json", True), (folder.parent / "chain.json", False)):
        chain = _read_json(chain_file) or {}
        stages, backbones = chain.get("chain") or [], chain.get("backbones") or []
        if not stages:
            continue
        if per_backbone and len(backbones) != 1:
            raise ModelError(f"{folder}: a grid of backbones ({', '.join(backbones)}); pass one, e.g. "
                             f"{folder / str(backbones[0])}")
        base = folder / backbones[0] if per_backbone else folder
        for stage in reversed(stages):
            if (base / stage / "model.keras").is_file():
                return base / stage / "model.keras"
    found = sorted(folder.glob("*/model.keras"))
    if len(found) != 1:
        listed = ", ".join(str(f.parent) for f in found[:6]) or "none"
        raise ModelError(f"{folder}: no model.keras in this folder; stage folders with one: {listed}")
    return found[0]


def load_keras(source: ModelSource) -> tuple[object, list[str]]:
    """The inference model and the names of training-only augmentation layers removed from it.

    Augmentation layers exported inside a model put random ops into the graph (ONNX Runtime refuses
    StatelessRandomUniformV2), so they are replaced by identities; the weights are copied by layer name.
    """
    from fer_edge.train.surgery import load_model

    model = load_model(source.path)
    try:
        model.input_shape  # noqa: B018  (subclassed or multi-input models have none to export)
    except (AttributeError, ValueError):
        raise ModelError(f"{source.path}: not a single-input Keras model") from None
    if isinstance(model.input_shape, list) or isinstance(model.output_shape, list):
        raise ModelError(f"{source.path}: fer-edge converts single-input, single-output classifiers")
    removed = [layer.name for layer in model.layers if _is_augmentation(layer)]
    nested = [f"{layer.name}/{sub.name}" for layer in model.layers if hasattr(layer, "layers")
              and not _is_augmentation(layer) for sub in _walk(layer) if type(sub).__name__.startswith(AUGMENT_PREFIX)]
    if nested:
        raise ModelError(f"{source.path}: augmentation layers inside a sub-model ({', '.join(nested[:3])}) "
                         "cannot be exported; rebuild the model without them")
    if not removed:
        return model, []
    return _strip(model, set(removed)), removed


def _is_augmentation(layer: object) -> bool:
    if type(layer).__name__.startswith(AUGMENT_PREFIX):
        return True
    subs = list(_walk(layer)) if hasattr(layer, "layers") else []
    return bool(subs) and all(type(s).__name__.startswith(AUGMENT_PREFIX) for s in subs)


def _walk(layer: object) -> list[object]:
    out = []
    for sub in getattr(layer, "layers", []):
        out += [sub, *_walk(sub)] if hasattr(sub, "layers") else [sub]
    return out


def _strip(model: object, names: set[str]) -> object:
    import keras

    def clone(layer: object) -> object:
        if layer.name in names:
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in new.layers:
        if layer.name not in names and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    return d if isinstance(d, dict) else None
