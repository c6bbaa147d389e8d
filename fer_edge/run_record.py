"""The run record: what training hands to conversion, distillation and explain, written as a stage's run.json.

``record_version`` 1 adds to the run.json keys older fer-edge wrote (all kept, so older readers work) the
versioned, schema-checked fields: ``classes``, ``input`` (``fer_edge.preprocess.InputSpec``), ``crop``
(``CropRule``), ``backbone``, ``stage``, ``protocol``, ``dataset`` (name, root, sha256, faces) and ``config`` (the
stage settings). A run.json without ``record_version`` (older runs, hand-written ones) reads as before: classes
(as written: canonicalised where they are used, so an explicit ``--classes`` still wins over a bad one), backbone
and the dataset found where older fer-edge looked; no input spec (the model's input shape decides) and the default
crop rule; an older file that cannot be read is skipped with a warning, as older fer-edge ignored it. JSON +
dataclasses only (no TensorFlow).

A run record on disk is untrusted: it is size-limited, validated against ``SCHEMA`` (a newer ``record_version`` is
refused), class names must be known emotions, and the one path in it that anything follows, the dataset root
(user data: the default calibration and evaluation faces), must be an absolute path without control characters or
``..`` parts; nothing else in it is opened.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from fer_edge import atomic, schema
from fer_edge.errors import DataError, ModelError
from fer_edge.labels import EMOTIONS, canonical
from fer_edge.preprocess import CROP_SCHEMA, DEFAULT_CROP, INPUT_SCHEMA, CropRule, InputSpec, check_input

RECORD_VERSION = 1
RUN_FILE = "run.json"
LEGACY_FILES = ("run.json", "report.json")  # report.json: older stage folders without a run.json
MAX_RECORD_BYTES = 16 << 20
MAX_PATH = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
log = logging.getLogger(__name__)
_warned: set[str] = set()  # a file's warning is given once a process (explain reads a record twice)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge run record",
    "type": "object",
    "required": ["record_version", "classes", "input", "crop", "backbone", "stage", "protocol", "dataset", "config"],
    "properties": {
        "record_version": {"type": "integer", "minimum": 1},
        "classes": {"type": "array", "items": {"enum": list(EMOTIONS)}, "minItems": 2, "maxItems": len(EMOTIONS),
                    "uniqueItems": True},
        "input": INPUT_SCHEMA,
        "crop": CROP_SCHEMA,
        "backbone": {"type": "string", "minLength": 1, "maxLength": 200},
        "stage": {"type": "string", "maxLength": 200},
        "protocol": {"type": "string", "maxLength": 200},
        "dataset": {
            "type": "object",
            "required": ["name", "root", "sha256", "faces"],
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "root": {"type": ["string", "null"], "maxLength": MAX_PATH},
                "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                "faces": {"type": ["integer", "null"], "minimum": 0},
            },
        },
        "config": {"type": "object"},
    },
}


@dataclass(frozen=True)
class DatasetRef:
    """The data a stage trained on: its layout name, the folder it was read from, its fingerprint."""

    name: str
    root: str | None = None          # absolute folder, None for data given in memory
    sha256: str | None = None        # fer_edge.train.reports.fingerprint of images + labels
    faces: int | None = None


@dataclass(frozen=True)
class RunRecord:
    """What a training stage hands on. ``record_version`` 0: read from an older run.json (``input`` None,
    ``classes`` as written there, not yet checked: ``canonical_classes``)."""

    classes: tuple[str, ...]
    input: InputSpec | None = None
    crop: CropRule = DEFAULT_CROP
    backbone: str | None = None
    stage: str | None = None
    protocol: str | None = None
    dataset: DatasetRef | None = None
    config: dict[str, Any] = field(default_factory=dict)
    record_version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The versioned fields, as run.json holds them (``write`` adds them to the older keys)."""
        if self.input is None:
            raise ModelError("a run record to write needs its input spec")
        ds = self.dataset
        return {"record_version": RECORD_VERSION, "classes": list(self.classes), "input": self.input.to_dict(),
                "crop": self.crop.to_dict(), "backbone": self.backbone or "", "stage": self.stage or "",
                "protocol": self.protocol or "",
                "dataset": {"name": ds.name if ds else "", "root": ds.root if ds else None,
                            "sha256": ds.sha256 if ds else None, "faces": ds.faces if ds else None},
                "config": dict(self.config)}

    def canonical_classes(self, where: str = "run record") -> tuple[str, ...]:
        """``classes`` as canonical emotion names; an unknown one (an older record's) is one ModelError line."""
        try:
            return tuple(canonical(c) for c in self.classes)
        except DataError as exc:
            raise ModelError(f"{where}: {exc}") from None


def validate(d: Any, where: str = "run record") -> None:
    """Check a versioned run record dict against SCHEMA and the rules above; one ModelError line."""
    if not isinstance(d, dict):
        raise ModelError(f"{where}: invalid run record (not a JSON object)")
    version = d.get("record_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > RECORD_VERSION:
        raise ModelError(f"{where}: run record_version {version} is newer than this fer-edge reads "
                         f"({RECORD_VERSION}); upgrade fer-edge")
    schema.check(d, SCHEMA, where, "run record", finite=tuple(SCHEMA["properties"]))  # older keys may hold NaN
    check_input(d["input"], where, "run record")
    root = d["dataset"]["root"]
    if root is not None:
        check_root(root, f"{where}: dataset root", absolute=True)


def check_root(root: str, what: str, absolute: bool) -> str:
    """``root`` if it is a usable dataset folder path: a string of at most MAX_PATH characters without control
    characters; when ``absolute`` (versioned records, written resolved) also absolute with no ``..`` part (older
    run.json files may hold the relative path training was given, read from the working folder as before)."""
    bad = not isinstance(root, str) or not root or len(root) > MAX_PATH or _CONTROL.search(root)
    if not bad and absolute:
        bad = not Path(root).is_absolute() or ".." in PurePosixPath(root.replace("\\", "/")).parts
    if bad:
        kind = "an absolute folder path without '..' parts" if absolute else "a folder path"
        raise ModelError(f"{what} {_short(repr(root), 80)} is not {kind} (or holds control characters)")
    return root


def from_dict(d: Any, where: str = "run record") -> RunRecord:
    """A RunRecord from run.json contents: versioned (validated) or older (read as older fer-edge did)."""
    if isinstance(d, dict) and "record_version" not in d:
        return _legacy(d, where)
    validate(d, where)
    ds = d["dataset"]
    return RunRecord(classes=tuple(d["classes"]), input=InputSpec.from_dict(d["input"]),
                     crop=CropRule.from_dict(d["crop"]), backbone=d["backbone"], stage=d["stage"] or None,
                     protocol=d["protocol"] or None,
                     dataset=DatasetRef(ds["name"], ds["root"], ds["sha256"], ds["faces"]) if ds["name"] else None,
                     config=dict(d["config"]), record_version=int(d["record_version"]))


def read(folder: str | Path) -> RunRecord | None:
    """The run record of a stage folder (or of the folder holding a model file): run.json, else an older
    report.json; None when there is neither (``load``)."""
    found = load(folder)
    return found[2] if found else None


def load(folder: str | Path) -> tuple[Path, dict[str, Any], RunRecord] | None:
    """(file, its JSON, its record) of a stage folder's run.json, else its report.json; None when there is neither.

    A versioned record that fails validation is a ModelError. An older file that cannot be read or is no JSON
    object is skipped with a one-line warning (older fer-edge ignored it) and the next one tried.
    """
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    for name in LEGACY_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            d = _load(path)
        except ModelError as exc:
            if _mentions_version(path):
                raise
            _warn(f"{exc}; ignored")
            continue
        if not isinstance(d, dict) or not d:
            _warn(f"{path}: holds no run record (not a JSON object with keys); ignored")
            continue
        return path, d, from_dict(d, str(path))
    return None


def write(path: str | Path, run: dict[str, Any], record: RunRecord | None = None) -> RunRecord:
    """Write run.json atomically: the older keys of ``run`` plus the versioned fields of ``record`` (default:
    ``for_stage(run)``), validated before anything is written. Returns the record."""
    record = record or for_stage(run)
    d = {**run, **record.to_dict()}
    validate(d, str(path))
    atomic.write_json(Path(path), d)
    return record


def for_stage(run: dict[str, Any], crop: CropRule | None = None) -> RunRecord:
    """The record of a finished training stage from the run.json keys the chain writes (classes, input_size,
    backbone, stage, protocol, data (the dataset fingerprint), config (the stage settings and the chain's)); the
    input is what every fer-edge model takes (``model_input_spec``), the crop ``crop`` (the rule the stage's dataset
    was cut by, when the caller knows one), else the data layer's (``fer_edge.data.faces.CROP``). Every key it sets
    that run.json already had keeps its value."""
    from fer_edge.preprocess import model_input_spec

    if crop is None:
        # A FaceDataset does not carry the rule it was cut by: the photo layouts (JAFFE, CK+) crop with FaceCropper's
        # default (faces.CROP), and the crop datasets (FERPlus, FER2013, RAF-DB) were cut by their makers, which the
        # runtime matches best with the same default. A dataset that records its own rule should pass it here.
        from fer_edge.data.faces import CROP as crop
    data = run.get("data") or {}
    root = data.get("root") or None
    config = dict(run.get("config") or (run.get("plan") or {}).get("config") or {})
    return RunRecord(classes=tuple(run["classes"]), input=model_input_spec(int(run["input_size"])), crop=crop,
                     backbone=run.get("backbone"), stage=run.get("stage"), protocol=run.get("protocol"),
                     dataset=DatasetRef(str(data.get("name") or ""), str(Path(root).resolve()) if root else None,
                                        data.get("sha256"), data.get("faces")) if data else None,
                     config=config)


def classes_of(model_path: str | Path, n: int) -> tuple[str, ...] | None:
    """Class order of a saved model's ``n`` outputs: its run record's classes when they are ``n``, else the 8
    canonical emotions for an 8-way head, else None (the caller asks for ``--classes``)."""
    record = read(model_path)
    if record is not None and len(record.classes) == n:
        return record.canonical_classes(str(model_path))
    return EMOTIONS if n == len(EMOTIONS) else None


def input_spec_of(model_path: str | Path, size: int, channels: int = 1) -> InputSpec:
    """How to feed a saved model: its run record's input spec when there is one (checked against the model's
    ``size`` and ``channels``), else what every fer-edge model takes at that size."""
    from fer_edge.preprocess import model_input_spec

    record = read(model_path)
    spec = record.input if record is not None else None
    if spec is None:
        return model_input_spec(size, channels)
    if (spec.height, spec.width, spec.channels) != (size, size, channels):
        raise ModelError(f"{model_path}: its run record says input {spec.height}x{spec.width}x{spec.channels} "
                         f"but the model takes {size}x{size}x{channels}")
    return spec


def _load(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise ModelError(f"{path}: {path.stat().st_size:,} bytes; a run record is at most {MAX_RECORD_BYTES:,}")
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelError(f"{path}: not valid JSON ({_short(exc, 120)})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("warning: %s", message)


def _mentions_version(path: Path) -> bool:
    """Whether an unparsable record file names ``record_version`` (a versioned record: its damage is an error)."""
    try:
        with path.open("rb") as f:
            return b'"record_version"' in f.read(MAX_RECORD_BYTES)
    except OSError:
        return False


def _legacy(d: dict[str, Any], where: str) -> RunRecord:
    """An older run.json / report.json, read as older fer-edge did (classes, as written, if a list of names)."""
    raw = d.get("classes")
    classes: tuple[str, ...] = ()
    if isinstance(raw, list) and raw and all(isinstance(c, str) for c in raw):
        classes = tuple(raw)
    cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
    backbone = d.get("backbone") or cfg.get("backbone")
    found = _find_dataset(d)
    dataset = None
    if found is not None:
        try:
            root = check_root(found["root"], f"{where}: dataset root", absolute=False)
        except ModelError as exc:
            _warn(f"{exc}; ignored")
        else:
            name = found.get("name")
            dataset = DatasetRef(name if isinstance(name, str) else Path(root).name, root)
    elif root := _folder_string(d.get("dataset")) or _folder_string(d.get("data")):
        dataset = DatasetRef(Path(root).name, root)
    return RunRecord(classes=classes, input=None, crop=DEFAULT_CROP,
                     backbone=backbone if isinstance(backbone, str) and backbone else None,
                     stage=d.get("stage") if isinstance(d.get("stage"), str) else None,
                     protocol=d.get("protocol") if isinstance(d.get("protocol"), str) else None,
                     dataset=dataset, config=cfg, record_version=0)


def _folder_string(v: Any) -> str | None:
    """An older record's ``"dataset": "/path"``: the root when it is an existing absolute folder without ``..``
    parts or control characters (the versioned root's rules); a name ("ferplus") or anything else is None."""
    if not isinstance(v, str):
        return None
    try:
        root = check_root(v, "dataset", absolute=True)
    except ModelError:
        return None
    return root if Path(root).is_dir() else None


def _find_dataset(meta: dict[str, Any], depth: int = 0) -> dict[str, Any] | None:
    """Older runs: the first {name, root} dict in the metadata (e.g. a dataset fingerprint), searched breadth-first."""
    if depth > 3 or not isinstance(meta, dict):
        return None
    for key in ("dataset", "data", "train", "val"):
        v = meta.get(key)
        if isinstance(v, dict) and isinstance(v.get("root"), str) and v["root"]:
            return v
    for v in meta.values():
        if isinstance(v, dict):
            found = _find_dataset(v, depth + 1)
            if found:
                return found
    return None


_short = schema.short
