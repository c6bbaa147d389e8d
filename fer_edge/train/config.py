"""What a `fer-edge train` run decides: the chain stages (datasets and how each is scored), the ChainConfig
(its fields are settings, declared as in fer_edge.train.settings), and reading it from CLI options and/or a
.json/.yaml file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fer_edge.errors import FerEdgeError
from fer_edge.extras import MissingExtra, install_line
from fer_edge.registry import Registry
from fer_edge.train.backbones import BACKBONES, resolve_weights
from fer_edge.train.distill import teacher_paths
from fer_edge.train.distribute import DISTRIBUTE
from fer_edge.train.settings import StageConfig, check_values, file_settings, names, setting, stage_keys

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


TTA = ("none", "flip")  # test-time augmentation when scoring a stage


@dataclass(frozen=True)
class ChainConfig:
    """Everything a `fer-edge train` run decides. ``stage`` holds the per-stage training defaults, ``stages``
    per-dataset overrides of them (e.g. {"jaffe": {"lr": 1e-4, "fold_epochs": 5}}). Saved into run.json and
    chain.json, so field names and defaults stay as they are."""

    out: str = setting(help="Run folder, e.g. runs/compact.", metavar="DIR", folder=True)
    chain: tuple[str, ...] = setting(("ferplus",), "Stages in order, comma-separated, from: "
                                     f"{', '.join(STAGES.names())}.", metavar="STAGES", choices=STAGES)
    backbones: tuple[str, ...] = setting(("compact",), "Run a grid of backbones (comma list); writes "
                                         "OUT/summary.md.", metavar="A,B,C", choices=BACKBONES, cli_default=None)
    weights: str = setting("none", "Start of the first stage: ImageNet weights, random, or a .keras model (e.g. a "
                           "FERPlus run).", metavar="imagenet|none|PATH")
    stage: StageConfig = setting(  # noqa: RUF009 (a dataclasses.field with its default_factory)
        help="The settings every stage shares (each its own option and key).", default_factory=StageConfig,
        file=False)
    stages: Mapping[str, Mapping] = setting(help="Per-stage overrides of them, e.g. {jaffe: {lr: 0.0001, "
                                            "fold_epochs: 5}} (config file only).", default_factory=dict, cli=False)
    data: Mapping[str, str] = setting(help="Dataset folder of a stage (default: $FER_EDGE_DATA/<name>, then "
                                      "../shared/data/<name>).", metavar="NAME=PATH", default_factory=dict)
    folds: int | None = setting(None, "Subject folds for CV stages.", low=2, per_stage=True,
                                default_text="10 for CK+, leave-one-subject-out for JAFFE")
    fold_epochs: int | None = setting(None, "Epochs per cross-validation fold.", low=1, per_stage=True,
                                      default_text="min(epochs, 10)")
    val_fraction: float = setting(0.1, "Share of training subjects held out for validation.", low=0, high=1,
                                  low_open=True, high_open=True)
    limit: int | None = setting(None, "At most N faces per split (quick runs).", low=10, unit="faces")
    gradcam_faces: int = setting(16, "Faces in each stage's Grad-CAM grid of confident mistakes.", low=1)
    resume: bool = setting(False, "Continue a stopped run: finished stages/folds are reused.")
    keep_fold_models: bool = setting(False, "Keep each fold's model and checkpoints.")
    tta: str = setting("none", "Score the test faces (official split and every fold) plain, or averaged with their "
                       "mirror image (flip, as fer-edge run --flip-tta).", choices=TTA)
    distribute: str = setting("auto", "tf.distribute: mirrored = this host's GPUs, multiworker = the hosts in "
                              "TF_CONFIG, auto = multiworker with a TF_CONFIG cluster, mirrored with 2+ GPUs, else "
                              "none. --batch-size is per replica; the LR is scaled by sqrt(replicas).",
                              choices=DISTRIBUTE)

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
            for key, value in over.items():
                FILE_SETTINGS[key].check(value, f"stage {name}: ")
        if self.weights not in ("none", "imagenet"):
            if len(self.backbones) > 1:
                raise FerEdgeError("--weights PATH starts one backbone; it cannot be combined with --backbones a,b")
            if not Path(self.weights).exists():
                raise FerEdgeError(f"--weights {self.weights}: no such model file{_missing_model_hint(self.weights)}")
        check_values(self)  # every setting among its choices and inside its range, the shared stage ones too
        for name in self.chain:
            c = self.stage_config(name)
            for t in teacher_paths(c.teacher):
                if not Path(t).is_file():
                    hint = _missing_model_hint(t) if _under_runs(t) else ""
                    raise FerEdgeError(f"--teacher {t}: no such model file{hint}")
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


def _under_runs(path: str) -> bool:
    """Whether a path is a run folder's output (``runs/...``), which the docs' earlier steps write."""
    return Path(path).parts[:1] == ("runs",) or "runs" in Path(path).parts[:-1]


def _missing_model_hint(path: str) -> str:
    """What to do about a start model that is not there: a ``runs/`` one comes from an earlier step."""
    if _under_runs(path):
        return "; run the earlier step first (docs/model.md) or get it from git (results/MODELS.md)"
    return " (use imagenet, none or a .keras path)"


FILE_SETTINGS = file_settings(ChainConfig)       # every config-file key, the shared stage settings' included
FILE_KEYS = set(FILE_SETTINGS)
STAGE_KEYS = stage_keys(StageConfig)             # what a stage may override under stages: ...
EXTRA_STAGE_KEYS = stage_keys(ChainConfig)       # ... including these chain settings (folds, fold_epochs)


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
                raise MissingExtra(f"YAML configs need PyYAML, part of the training extra: {install_line('train')}; "
                                   "or write the config as JSON") from None
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


def _coerce(key: str, value: object, where: str = "") -> object:
    """A setting from a file or the command line as its field's type, checked (so "5" and 5 both work; "yes" for a
    number does not); an unknown key's value is left for the unknown-key check."""
    s = FILE_SETTINGS.get(key)
    return value if s is None else s.coerce(value, where)


def data_error(value: object) -> str:
    """The one line for a ``data`` setting that is not a mapping of stage names to folders."""
    return (f"data: expected a mapping of stage names to dataset folders, e.g. {{ferplus: /data/ferplus}}; "
            f"got {type(value).__name__} {str(value)[:60]}")


def config_from_settings(settings: Mapping[str, object]) -> ChainConfig:
    """A ChainConfig from flat settings (CLI options and/or a config file), types checked."""
    s = dict(settings)
    if s.get("backbones") and s.get("backbone"):
        raise FerEdgeError("give --backbone or --backbones, not both")
    backbones = _coerce("backbones", s.pop("backbones", None))
    if not backbones:
        backbones = (_coerce("backbone", s.pop("backbone", None) or "compact"),)
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
        raise FerEdgeError(data_error(data))
    stages = s.pop("stages", None) or {}
    if not isinstance(stages, Mapping) or not all(isinstance(v, Mapping) for v in stages.values()):
        raise FerEdgeError("stages must map stage names to settings, e.g. {jaffe: {lr: 0.0001}}")
    kw = {k: _coerce(k, v) for k, v in s.items() if v is not None}
    kw["chain"] = names(kw.get("chain", "ferplus"))
    per_stage = STAGE_KEYS | EXTRA_STAGE_KEYS
    try:
        cfg = ChainConfig(backbones=backbones, stage=stage, data={str(k).lower(): str(v) for k, v in data.items()},
                          stages={str(k).lower(): {str(a): _coerce(str(a), b, f"stage {str(k).lower()}: ")
                                                   if str(a) in per_stage else b for a, b in v.items()}
                                  for k, v in stages.items()}, **kw)
    except TypeError as exc:
        raise FerEdgeError(f"bad chain setting: {exc}") from None
    return cfg
