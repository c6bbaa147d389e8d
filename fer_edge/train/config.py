"""What a `fer-edge train` run decides: the chain stages (datasets and how each is scored), the ChainConfig,
and reading it from CLI options and/or a .json/.yaml file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from fer_edge.errors import FerEdgeError
from fer_edge.registry import Registry
from fer_edge.train.adversarial import check as check_adversarial
from fer_edge.train.backbones import BACKBONES, resolve_weights
from fer_edge.train.distill import teacher_paths
from fer_edge.train.distribute import DISTRIBUTE
from fer_edge.train.precision import PRECISIONS
from fer_edge.train.trainer import Phase, StageConfig

PROTOCOLS = {
    "official": "official test split",
    "kfold": "subject-independent k-fold",
    "loso": "leave-one-subject-out",
}


@dataclass(frozen=True)
class StageData:
    """A dataset a chain stage can train on: where its folder usually lives and how it is scored."""

    name: str
    folder: str               # folder name under the data root
    protocol: str             # official | kfold | loso
    folds: int = 0            # default k for kfold
    description: str = ""


STAGES: Registry[StageData] = Registry("chain stage")
for _s in (
    StageData("ferplus", "ferplus", "official", description="FERPlus, 8 classes, official Train/Valid/Test"),
    StageData("rafdb", "rafdb", "official", description="RAF-DB basic, 7 classes, official train/test"),
    StageData("jaffe", "jaffe", "loso", description="JAFFE, 7 classes, 10 subjects: leave-one-subject-out"),
    StageData("ckplus", "ckplus48", "kfold", 10,
              description="CK+, 7 classes (contempt, no neutral): 10-fold by subject"),
):
    STAGES.add(_s.name, _s)

STAGE_KEYS = {f.name for f in fields(StageConfig)} - {"weights", "backbone"}
EXTRA_STAGE_KEYS = {"fold_epochs", "folds"}


@dataclass(frozen=True)
class ChainConfig:
    """Everything a `fer-edge train` run decides. ``stage`` holds the per-stage training defaults, ``stages``
    per-dataset overrides of them (e.g. {"jaffe": {"lr": 1e-4, "fold_epochs": 5}})."""

    out: str
    chain: tuple[str, ...] = ("ferplus",)
    backbones: tuple[str, ...] = ("compact",)
    weights: str = "none"                         # imagenet | none | PATH (.keras) for the first stage
    stage: StageConfig = field(default_factory=StageConfig)
    stages: Mapping[str, Mapping] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict)
    folds: int | None = None                      # k for CV stages (JAFFE: leave-one-subject-out unless set)
    fold_epochs: int | None = None                # epochs per fold; default min(epochs, 10)
    val_fraction: float = 0.1                     # share of training subjects held out for validation
    limit: int | None = None                      # at most this many faces per split (quick runs)
    gradcam_faces: int = 16
    resume: bool = False
    keep_fold_models: bool = False
    distribute: str = "auto"                      # auto | none | mirrored | multiworker (fer_edge.train.distribute)

    def validate(self) -> None:
        """Every option checked up front, each problem one clear line."""
        if not self.chain:
            raise FerEdgeError("--chain is empty; give stages like ferplus,jaffe,ckplus")
        for name in self.chain:
            STAGES.get(name)
        if len(set(self.chain)) != len(self.chain):
            raise FerEdgeError(f"--chain repeats a stage: {','.join(self.chain)}")
        if not self.backbones:
            raise FerEdgeError("no backbone given")
        for b in self.backbones:
            BACKBONES.get(b)
        if len(set(self.backbones)) != len(self.backbones):
            raise FerEdgeError(f"--backbones repeats a backbone: {','.join(self.backbones)}")
        unknown = set(self.data) - set(STAGES.names())
        if unknown:
            raise FerEdgeError(f"--data names unknown stage(s) {', '.join(sorted(unknown))}; "
                               f"choose from {', '.join(STAGES.names())}")
        for name, over in self.stages.items():
            STAGES.get(name)
            bad = set(over) - STAGE_KEYS - EXTRA_STAGE_KEYS
            if bad:
                raise FerEdgeError(f"stage {name}: unknown setting(s) {', '.join(sorted(bad))}; "
                                   f"valid: {', '.join(sorted(STAGE_KEYS | EXTRA_STAGE_KEYS))}")
        if self.weights not in ("none", "imagenet"):
            if len(self.backbones) > 1:
                raise FerEdgeError("--weights PATH starts one backbone; it cannot be combined with --backbones a,b")
            if not Path(self.weights).exists():
                raise FerEdgeError(f"--weights {self.weights}: no such model file "
                                   "(use imagenet, none or a .keras path)")
        if self.folds is not None and self.folds < 2:
            raise FerEdgeError(f"--folds must be at least 2, got {self.folds}")
        if not 0 < self.val_fraction < 1:
            raise FerEdgeError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.distribute not in DISTRIBUTE:
            raise FerEdgeError(f"--distribute: choose one of {', '.join(DISTRIBUTE)}, got {self.distribute!r}")
        if self.limit is not None and self.limit < 10:
            raise FerEdgeError(f"--limit must be at least 10 faces, got {self.limit}")
        for name in self.chain:
            c = self.stage_config(name)
            if c.epochs < 1 or c.batch_size < 1 or c.lr <= 0:
                raise FerEdgeError(f"stage {name}: epochs and batch size must be >= 1 and lr > 0")
            if c.class_weight not in ("none", "sqrt", "balanced"):
                raise FerEdgeError(f"stage {name}: class weighting must be none, sqrt or balanced")
            if c.schedule not in ("cosine", "plateau"):
                raise FerEdgeError(f"stage {name}: schedule must be cosine or plateau")
            if c.plateau_patience < 1 or not 0 < c.plateau_factor < 1 or c.min_lr < 0 or c.weight_decay < 0:
                raise FerEdgeError(f"stage {name}: plateau_patience must be >= 1, plateau_factor in (0, 1), "
                                   "min_lr and weight_decay >= 0")
            check_adversarial(c.adversarial, c.adv_epsilon)
            if c.swa < 0:
                raise FerEdgeError(f"stage {name}: --swa must be 0 (off) or a number of epochs, got {c.swa}")
            for t in teacher_paths(c.teacher):
                if not Path(t).is_file():
                    raise FerEdgeError(f"--teacher {t}: no such model file")
            if not 0 <= c.teacher_weight <= 1:
                raise FerEdgeError(f"stage {name}: --teacher-weight must be in [0, 1], got {c.teacher_weight}")
            if c.precision not in PRECISIONS:
                raise FerEdgeError(f"stage {name}: unknown precision {c.precision!r}; choose {', '.join(PRECISIONS)}")
            if self.fold_epochs_for(name) < 1:
                raise FerEdgeError(f"stage {name}: fold epochs must be >= 1")
        for b in self.backbones:
            spec = BACKBONES.get(b)
            size = self.stage.input_size or spec.input_size
            if size < spec.min_size:
                raise FerEdgeError(f"{b} needs an input of at least {spec.min_size} px, got {size}")
            if self.weights == "imagenet":
                resolve_weights(spec, "imagenet")

    def stage_config(self, name: str, backbone: str | None = None) -> StageConfig:
        """The StageConfig of one stage: the shared one with that stage's overrides."""
        over = {k: v for k, v in self.stages.get(name, {}).items() if k in STAGE_KEYS}
        cfg = replace(self.stage, **over)
        return replace(cfg, backbone=backbone) if backbone else cfg

    def fold_epochs_for(self, name: str) -> int:
        over = self.stages.get(name, {})
        if "fold_epochs" in over:
            return int(over["fold_epochs"])
        if self.fold_epochs is not None:
            return self.fold_epochs
        return min(self.stage_config(name).epochs, 10)

    def folds_for(self, name: str) -> int | None:
        over = self.stages.get(name, {})
        return int(over["folds"]) if "folds" in over else self.folds

    def to_dict(self) -> dict:
        """Plain JSON-able settings (as run.json and chain.json record them)."""
        return json.loads(json.dumps(asdict(self)))


CHAIN_KEYS = {f.name for f in fields(ChainConfig)} - {"stage"}
FILE_KEYS = CHAIN_KEYS | STAGE_KEYS | {"backbone"}


def read_config_file(path: str | Path) -> dict:
    """A chain config (.json, .yaml or .yml): the same keys as the command's long options, with underscores,
    plus ``stages: {jaffe: {lr: 0.0001, fold_epochs: 5}}`` and ``data: {ferplus: PATH}``."""
    path = Path(path)
    if not path.is_file():
        raise FerEdgeError(f"--config {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise FerEdgeError("YAML configs need PyYAML, part of the training extra: pip install "
                                   "'fer-edge[train]'; or write the config as JSON") from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except FerEdgeError:
        raise
    except Exception as exc:
        raise FerEdgeError(f"--config {path}: not valid {path.suffix.lstrip('.') or 'JSON'} "
                           f"({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise FerEdgeError(f"--config {path}: expected a mapping of settings at the top level")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    bad = set(data) - FILE_KEYS
    if bad:
        raise FerEdgeError(f"--config {path}: unknown setting(s) {', '.join(sorted(bad))}; "
                           f"valid: {', '.join(sorted(FILE_KEYS))}")
    return data


_TYPES = {"input_size": int, "fold_epochs": int, "folds": int, "limit": int, "gradcam_faces": int,
          "val_fraction": float, "resume": bool, "keep_fold_models": bool, "out": str, "weights": str,
          "distribute": str}


def _phases(value: object) -> tuple[Phase, ...] | None:
    """Explicit phases: Phase objects or mappings {name, unfreeze, lr, epochs}."""
    if value is None:
        return None
    try:
        out = tuple(p if isinstance(p, Phase) else Phase(str(p["name"]), float(p["unfreeze"]), float(p["lr"]),
                                                          int(p["epochs"])) for p in value)
    except (TypeError, KeyError, ValueError):
        raise FerEdgeError("phases must be a list of {name, unfreeze, lr, epochs}") from None
    if not out or any(p.epochs < 1 or p.lr <= 0 or not 0 <= p.unfreeze <= 1 for p in out):
        raise FerEdgeError("phases need epochs >= 1, lr > 0 and unfreeze in [0, 1]")
    return out


def _coerce(key: str, value: object) -> object:
    """A setting from a file as the type StageConfig uses (so "5" and 5 both work; "yes" for a number does not)."""
    if key == "phases":
        return _phases(value)
    default = getattr(StageConfig(), key, None)
    kind = _TYPES.get(key) or (type(default) if default is not None else None)
    if kind is None or value is None or isinstance(value, kind):
        return value
    try:
        if kind is bool:
            if str(value).lower() in ("true", "1", "yes", "on"):
                return True
            if str(value).lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise FerEdgeError(f"setting {key}: expected {kind.__name__}, got {value!r}") from None


def _names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(v).strip().lower() for v in items if str(v).strip())


def config_from_settings(settings: Mapping[str, object]) -> ChainConfig:
    """A ChainConfig from flat settings (CLI options and/or a config file), types checked."""
    s = dict(settings)
    if s.get("backbones") and s.get("backbone"):
        raise FerEdgeError("give --backbone or --backbones, not both")
    backbones = _names(s.pop("backbones", None)) or _names(s.pop("backbone", None) or "compact")
    s.pop("backbone", None)
    if not s.get("out"):
        raise FerEdgeError("--out is required (the run folder, e.g. runs/compact)")
    stage_kw = {k: _coerce(k, s.pop(k)) for k in list(s) if k in STAGE_KEYS and s[k] is not None}
    try:
        stage = StageConfig(**stage_kw)
    except TypeError as exc:
        raise FerEdgeError(f"bad training setting: {exc}") from None
    data = s.pop("data", None) or {}
    if not isinstance(data, Mapping):
        raise FerEdgeError("data must map stage names to paths, e.g. {ferplus: /data/ferplus}")
    stages = s.pop("stages", None) or {}
    if not isinstance(stages, Mapping) or not all(isinstance(v, Mapping) for v in stages.values()):
        raise FerEdgeError("stages must map stage names to settings, e.g. {jaffe: {lr: 0.0001}}")
    kw = {k: _coerce(k, v) for k, v in s.items() if v is not None}
    kw["chain"] = _names(kw.get("chain", "ferplus"))
    try:
        cfg = ChainConfig(backbones=backbones, stage=stage, data={str(k).lower(): str(v) for k, v in data.items()},
                          stages={str(k).lower(): {str(a): _coerce(str(a), b) for a, b in v.items()}
                                  for k, v in stages.items()}, **kw)
    except TypeError as exc:
        raise FerEdgeError(f"bad chain setting: {exc}") from None
    return cfg
