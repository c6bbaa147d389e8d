"""Every training setting defined once, as a dataclass field: its type (the annotation), its default, and in its
metadata what the command line and a config file need (help, choices, range, unit, whether a stage may override it
under ``stages:``). The `fer-edge train` options (fer_edge.train.cli_options), the config-file keys and the type
coercion and checks (fer_edge.train.config) are all derived from these fields, so a bad value reads the same one line
from the command line and from a file. Holds StageConfig (one stage's training) and the choice lists; ChainConfig
(the whole run) is declared the same way in fer_edge.train.config."""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.registry import Registry
from fer_edge.train.adversarial import DEFAULT_EPSILON
from fer_edge.train.backbones import BACKBONES
from fer_edge.train.precision import PRECISIONS

SCHEDULES = ("cosine", "plateau")
CLASS_WEIGHTS = ("none", "sqrt", "balanced")
AUGMENT_LEVELS = ("heavy", "strong", "light", "none")
AS_FIELD: Any = object()  # Meta.cli_default: the command line's default is the field's


class SettingError(FerEdgeError):
    """A training setting with a bad value, in one line naming its option (the same from a file or the CLI)."""


@dataclass(frozen=True)
class Meta:
    """What a setting is beyond its type and default."""

    help: str = ""
    choices: tuple[str, ...] | Registry | None = None  # the values allowed (of each item, for a comma list)
    low: float | None = None                   # range: low <= value (< with low_open) ...
    high: float | None = None                  # ... value <= high (< with high_open)
    low_open: bool = False
    high_open: bool = False
    unit: str = ""                             # of the value, as error messages say it ("faces", "px")
    per_stage: bool = False                    # a stage may override it under ``stages:``
    cli: bool = True                           # a command-line option (else a config-file key only)
    file: bool = True                          # a config-file key (else set through another setting)
    negative: str = ""                         # a boolean's off switch, e.g. "hard-labels"
    metavar: str | None = None
    default_text: str | None = None            # the default as --help says it, when it is not a plain value
    cli_default: Any = AS_FIELD                # the command line's default, when not the field's
    folder: bool = False                       # a folder path (the command line refuses an existing file)
    normalize: Callable[[Any], Any] | None = None  # older spellings to the current one, before the checks
    parse: Callable[[Any], Any] | None = None      # a structured value (e.g. phases) from a file's lists/mappings


def setting(default: Any = MISSING, help: str = "", **meta: Any) -> Any:
    """A dataclass field that is a training setting (``meta``: the Meta fields, plus ``default_factory``)."""
    factory = meta.pop("default_factory", MISSING)
    return field(default=default, default_factory=factory, metadata={"setting": Meta(help, **meta)})


def stage_setting(default: Any = MISSING, help: str = "", **meta: Any) -> Any:
    """A setting that a stage may override under ``stages:``."""
    return setting(default, help, per_stage=True, **meta)


def choice_error(label: str, choices: tuple[str, ...], value: object) -> str:
    return f"{label}: expected one of {', '.join(choices)}, got {value!r}"


def names(value: object) -> tuple[str, ...]:
    """A comma list (or a list) of names: stripped, lower-case, blanks dropped."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list = value.split(",")
    else:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
    return tuple(str(v).strip().lower() for v in items if str(v).strip())


def _number(kind: type, value: object) -> object:
    """``value`` as ``kind`` (bool, int or float); ValueError if it is not one ("5e-3" is a float, true no int)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return kind(value)


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass: its name, the plain type its values take, its default and metadata."""

    name: str
    kind: type        # bool, int, float, str, tuple (a comma list), dict (a mapping) or a nested settings class
    default: Any
    meta: Meta

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """How errors name it: its option, or its config-file key if it has none."""
        return self.flag if self.meta.cli else self.name

    def choice_names(self) -> tuple[str, ...] | None:
        c = self.meta.choices
        return tuple(c.names()) if isinstance(c, Registry) else c

    def range_text(self) -> str | None:
        """The range as errors say it ("at least 10 faces", "in (0, 1)", "> 0"), or None."""
        m = self.meta
        unit = f" {m.unit}" if m.unit else ""
        if m.low is not None and m.high is not None:
            return f"in {'(' if m.low_open else '['}{_fmt(m.low)}, {_fmt(m.high)}{')' if m.high_open else ']'}{unit}"
        if m.low is not None:
            word = "> " if m.low_open else "at least " if self.kind is int else ">= "
            return f"{word}{_fmt(m.low)}{unit}"
        if m.high is not None:
            return f"{'< ' if m.high_open else '<= '}{_fmt(m.high)}{unit}"
        return None

    def coerce(self, value: object, where: str = "") -> object:
        """``value`` from a config file or the command line as this setting's type ("5" and 5, "5e-3" and 0.005
        alike), then checked; a bad one is a SettingError. ``where`` prefixes the message (e.g. "stage jaffe: ")."""
        if value is None:
            return None
        m = self.meta
        if m.parse is not None:
            value = m.parse(value)
        elif self.kind is tuple:
            value = names(value)
        elif self.kind in (bool, int, float):
            try:
                value = _number(self.kind, value)
            except (TypeError, ValueError):
                raise SettingError(f"{where}{self.label}: expected {self.kind.__name__}, got {value!r}") from None
        elif self.kind is str and not isinstance(value, str):
            value = str(value)
        if m.normalize is not None:
            value = m.normalize(value)
        if isinstance(m.choices, Registry) and isinstance(value, str):
            value = value.lower()
        self.check(value, where)
        return value

    def check(self, value: object, where: str = "") -> None:
        """A SettingError unless ``value`` (already of this setting's type; None passes) is among the choices and
        inside the range."""
        if value is None:
            return
        m = self.meta
        if m.choices is not None:
            for item in (value if self.kind is tuple else (value,)):
                if isinstance(m.choices, Registry):
                    try:
                        m.choices.get(str(item))
                    except FerEdgeError as exc:
                        raise SettingError(f"{where}{self.label}: {exc}") from None
                elif item not in m.choices:
                    raise SettingError(choice_error(where + self.label, m.choices, item))
        if isinstance(value, float) and not math.isfinite(value):  # NaN fails every comparison below
            raise SettingError(f"{where}{self.label} must be a finite number, got {value}")
        text = self.range_text()
        if text is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(f"{where}{self.label}: expected {self.kind.__name__}, got {value!r}")
        low_bad = m.low is not None and (value < m.low or (m.low_open and value == m.low))
        high_bad = m.high is not None and (value > m.high or (m.high_open and value == m.high))
        if low_bad or high_bad:
            raise SettingError(f"{where}{self.label} must be {text}, got {value}")


def _kind(hint: object) -> type:
    """The plain type of an annotation: ``int | None`` -> int, ``tuple[str, ...]`` -> tuple, ``Mapping[..]`` -> dict."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint) or hint
    if origin is tuple:
        return tuple
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return dict
    return origin  # type: ignore[return-value]


@functools.cache
def settings_of(cls: type) -> dict[str, Setting]:
    """The settings of a settings dataclass by field name, in field order; every field must be a setting()."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        if "setting" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        out[f.name] = Setting(f.name, _kind(hints[f.name]), default, f.metadata["setting"])
    return out


def _flat(cls: type, keep: Callable[[Setting], bool]) -> list[Setting]:
    """The settings of ``cls`` that ``keep`` accepts, a nested settings class's in its place; names must be unique."""
    out: list[Setting] = []
    for s in settings_of(cls).values():
        out += _flat(s.kind, keep) if is_dataclass(s.kind) else [s] if keep(s) else []
    dup = sorted({s.name for s in out if [t.name for t in out].count(s.name) > 1})
    if dup:
        raise TypeError(f"{cls.__name__}: {', '.join(dup)} declared twice as options or keys")
    return out


def cli_settings(cls: type) -> list[Setting]:
    """The settings of ``cls`` that are command-line options, in the order --help lists them."""
    return _flat(cls, lambda s: s.meta.cli)


def file_settings(cls: type) -> dict[str, Setting]:
    """The settings of ``cls`` that a config file may set, by key."""
    return {s.name: s for s in _flat(cls, lambda s: s.meta.file)}


def stage_keys(cls: type) -> set[str]:
    """The settings of ``cls`` itself (not nested ones) that a stage may override under ``stages:``."""
    return {s.name for s in settings_of(cls).values() if s.meta.per_stage}


def check_values(obj: object, where: str = "") -> None:
    """Every setting of a settings dataclass instance (nested ones too) among its choices and inside its range."""
    for s in settings_of(type(obj)).values():
        value = getattr(obj, s.name)
        if is_dataclass(s.kind):
            check_values(value, where)
        else:
            s.check(value, where)


def _augment_alias(value: object) -> object:
    """True/False (configs from before the levels) as strong/none; a level in any case as lower-case."""
    text = str(value).lower()
    return {"true": "strong", "yes": "strong", "on": "strong", "false": "none", "no": "none", "off": "none"}.get(
        text, text)


def augment_level(value: object) -> str:
    """An ``augment`` setting as one of AUGMENT_LEVELS; True and False (older configs) read as strong and none."""
    level = _augment_alias(value)
    if level not in AUGMENT_LEVELS:
        raise SettingError(choice_error("--augment", AUGMENT_LEVELS, value))
    return str(level)


@dataclass(frozen=True)
class Phase:
    """One phase of a stage: how much of the backbone trains, at which learning rate, for how long."""

    name: str
    unfreeze: float
    lr: float
    epochs: int


def read_phases(value: object) -> tuple[Phase, ...] | None:
    """Explicit phases: Phase objects or mappings {name, unfreeze, lr, epochs}."""
    if value is None:
        return None
    try:
        out = tuple(p if isinstance(p, Phase) else Phase(str(p["name"]), float(p["unfreeze"]), float(p["lr"]),
                                                          int(p["epochs"])) for p in value)
    except (TypeError, KeyError, ValueError):
        raise SettingError("phases must be a list of {name, unfreeze, lr, epochs}") from None
    if not out or any(p.epochs < 1 or not 0 < p.lr < math.inf or not 0 <= p.unfreeze <= 1 for p in out):
        raise SettingError("phases need epochs >= 1, a finite lr > 0 and unfreeze in [0, 1]")
    return out


@dataclass(frozen=True)
class StageConfig:
    """Everything that decides one stage's training. Saved into run.json and plan.json (--resume compares it), so
    field names and defaults stay as they are; a new field needs a default that reproduces the old behaviour."""

    backbone: str = setting("compact", "Backbone to train (see the list).", choices=BACKBONES)
    input_size: int | None = stage_setting(None, "Input side in px.", low=8, unit="px", default_text="backbone's")
    weights: str = setting("none", "imagenet | none | PATH of a .keras model to start from (the chain's --weights).",
                           cli=False, file=False)
    epochs: int = stage_setting(30, "Epochs per stage (the model handed on).", low=1)
    batch_size: int = stage_setting(64, "Faces per batch (per replica under --distribute).", low=1)
    lr: float = stage_setting(1e-3, "Learning rate (a transfer stage's later phases take 1/10 and 1/100 of it).",
                              low=0, low_open=True)
    weight_decay: float = stage_setting(1e-4, "AdamW weight decay.", low=0)
    schedule: str = stage_setting("cosine", "cosine: warm-up, then cosine decay over each phase; plateau: constant, "
                                  "multiplied by --plateau-factor when val_loss stalls.", choices=SCHEDULES)
    plateau_patience: int = stage_setting(3, "plateau: epochs without a lower val_loss before the LR is lowered.",
                                          low=1)
    plateau_factor: float = stage_setting(0.5, "plateau: the factor the LR is multiplied by.", low=0, high=1,
                                          low_open=True, high_open=True)
    min_lr: float = stage_setting(1e-6, "plateau: the LR never goes below this.", low=0)
    soft_labels: bool = stage_setting(True, "Train on FERPlus vote distributions, or on majority labels.",
                                      negative="hard-labels")
    class_weight: str = stage_setting("none", "Loss weight per class: none, sqrt or balanced (inverse frequency).",
                                      choices=CLASS_WEIGHTS)
    label_smoothing: float = stage_setting(0.0, "Label smoothing of the training targets.", low=0, high=1,
                                           high_open=True)
    augment: str = stage_setting("strong", "heavy: flip, rotate 30, shift/shear/zoom 20%, brightness x0.2-1.2; "
                                 "strong: milder, plus contrast and erasing; light: flip and small shift.",
                                 choices=AUGMENT_LEVELS, normalize=_augment_alias)
    patience: int = stage_setting(10, "Stop after this many epochs without a better validation accuracy.", low=1)
    dropout: float = stage_setting(0.4, "Dropout before the classifier.", low=0, high=1, high_open=True)
    seed: int = stage_setting(0, "Random seed (weights, shuffling, augmentation).")
    phases: tuple[Phase, ...] | None = stage_setting(
        None, "Explicit phases [{name, unfreeze, lr, epochs}] instead of the automatic ones (config file only).",
        cli=False, parse=read_phases)
    adversarial: float = stage_setting(0.0, "Weight of the loss on FGSM neighbours (0 = off).", low=0)
    adv_epsilon: float = stage_setting(DEFAULT_EPSILON, "FGSM step (input range [0, 1]); also the epsilon of the "
                                       "reported FGSM accuracy.", low=0, high=1, low_open=True, high_open=True)
    precision: str = stage_setting("auto", "auto = mixed_float16 where a GPU is seen, else float32 (models are saved "
                                   "as float32).", choices=PRECISIONS)
    swa: int = stage_setting(0, "Average the weights of the last N epochs (BatchNorm recomputed); kept if it "
                             "validates better. The N epochs stay in ckpt/swa/ for fer-edge average.", low=0,
                             metavar="N")
    teacher: str = stage_setting("", "Distill: a stronger .keras model's flip-averaged predictions join the "
                                 "training targets; several paths separated by commas = their ensemble's mean.",
                                 metavar="PATH")
    teacher_weight: float = stage_setting(0.5, "Share of the teacher's predictions in the targets.", low=0, high=1)
    soft_floor: float = stage_setting(0.0, "Vote shares below this are dropped from the soft targets (0.15 drops "
                                      "FERPlus's single votes: Barsoum et al.'s outlier removal).", low=0, high=1,
                                      high_open=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment", augment_level(self.augment))

    def resolved_phases(self, transfer: bool) -> tuple[Phase, ...]:
        """From scratch: one phase, all layers. Transfer: head only, then the top blocks, then all, LR /10 each."""
        if self.phases:
            return self.phases
        if not transfer:
            return (Phase("all", 1.0, self.lr, self.epochs),)
        head = max(1, self.epochs // 5)
        top = max(1, (self.epochs - head) // 2)
        return (Phase("head", 0.0, self.lr, head),
                Phase("top", 0.3, self.lr / 10, top),
                Phase("all", 1.0, self.lr / 100, max(1, self.epochs - head - top)))
