"""The model bundle: a folder of artifacts plus manifest.json, the one source of truth for class order,
input size, colour, normalization, the face-crop rule and each artifact's precision. Numpy + OpenCV only (used on
devices); the input spec and crop rule are ``fer_edge.preprocess``'s, shared with training.

A bundle is untrusted input (it is downloaded and copied between machines; its sha256s prove nothing about
who made it). Loading one checks, before anything is opened or copied:

- every file the manifest names (artifacts, companions) is a plain file name: no folder separator, not ``.``
  or ``..``, not absolute, no control characters; and where it exists in the folder it is not a symlink, so
  nothing is read from, or copied to, anywhere outside the bundle;
- the values are usable: input height and width at most ``MAX_INPUT_SIDE``, colour matching the channels,
  ``mean``/``std`` of one value or one per channel, ``std > 0``, no NaN or infinity anywhere;
- unknown keys (in the top level, ``input``, ``crop``, an artifact or a companion; a newer fer-edge may add some)
  are ignored with one warning naming them; a newer ``schema_version`` is refused with a message saying so, and a
  schema 1 manifest (no ``crop``) reads as schema 2 with the default crop rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fer_edge import schema
from fer_edge.errors import ModelError
from fer_edge.preprocess import (  # noqa: F401  (InputSpec, MAX_INPUT_SIDE: re-exported, their old home)
    CROP_SCHEMA,
    DEFAULT_CROP,
    INPUT_SCHEMA,
    MAX_INPUT_SIDE,
    CropRule,
    InputSpec,
    check_input,
)

SCHEMA_VERSION = 2  # 2: the face-crop rule (``crop``); 1: without it (read as the default rule)
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20
_BAD_NAME = re.compile(r"[/\\:\x00-\x1f\x7f]")
log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int8_float_io")
STATUSES = ("passed", "degraded", "failed", "not_validated")

DTYPES = ("float32", "float16", "int8", "uint8", "int16")  # what the converters write (int16: 16x8 fallback)
PRINTABLE: dict[str, Any] = {"not": {"pattern": "[\\x00-\\x1f\\x7f]"}}  # no control characters (terminal escapes)
_QUANT = {"type": ["object", "null"], "required": ["scale", "zero_point"],
          "properties": {"scale": {"type": "number"}, "zero_point": {"type": "integer"}}}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge bundle manifest",
    "type": "object",
    "required": ["schema_version", "name", "backbone", "classes", "input", "crop", "artifacts"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "name": {"type": "string", "minLength": 1, **PRINTABLE},
        "backbone": {"type": "string", **PRINTABLE},
        "classes": {"type": "array", "items": {"type": "string", "maxLength": 200, **PRINTABLE}, "minItems": 2,
                    "maxItems": 1000, "uniqueItems": True},
        "parameters": {"type": ["integer", "null"]},
        "input": INPUT_SCHEMA,
        "crop": CROP_SCHEMA,
        "artifacts": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["format", "precision", "file", "sha256", "bytes", "input_dtype", "output_dtype"],
                "properties": {
                    "format": {"type": "string"}, "precision": {"enum": list(PRECISIONS)},
                    "file": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "bytes": {"type": "integer", "minimum": 1},
                    "input_dtype": {"enum": list(DTYPES)}, "output_dtype": {"enum": list(DTYPES)},
                    "input_quant": _QUANT, "output_quant": _QUANT,
                    "status": {"enum": list(STATUSES)}, "status_reason": {"type": "string"},
                    "accuracy": {"type": ["number", "null"]}, "agreement": {"type": ["number", "null"]},
                    "options": {"type": "object"},
                    "companions": {"type": "array", "items": {
                        "type": "object", "required": ["file", "sha256", "bytes"],
                        "properties": {"file": {"type": "string"},
                                       "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                       "bytes": {"type": "integer", "minimum": 1}}}},
                },
            },
        },
        "evaluation": {"type": "object"},
        "provenance": {"type": "object"},
    },
}


@dataclass(frozen=True)
class Artifact:
    """One model file of the bundle and everything needed to run it."""

    format: str
    precision: str
    file: str
    sha256: str
    bytes: int
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    input_quant: dict[str, float] | None = None
    output_quant: dict[str, float] | None = None
    status: str = "not_validated"
    status_reason: str = ""
    accuracy: float | None = None
    agreement: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # files the main one needs beside it (OpenVINO .bin), each {file, sha256, bytes}
    companions: tuple[dict[str, Any], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.format}:{self.precision}"

    @property
    def total_bytes(self) -> int:
        """Size of the main file plus its companions."""
        return self.bytes + sum(int(c["bytes"]) for c in self.companions)


@dataclass(frozen=True)
class Manifest:
    name: str
    backbone: str
    classes: tuple[str, ...]
    input: InputSpec
    artifacts: tuple[Artifact, ...] = ()
    parameters: int | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    crop: CropRule = DEFAULT_CROP    # how the runtime crops faces for this model (as its training data was cropped)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["input"], d["crop"] = self.input.to_dict(), self.crop.to_dict()
        d["artifacts"] = [{**asdict(a), "companions": [dict(c) for c in a.companions]} for a in self.artifacts]
        return {"schema_version": SCHEMA_VERSION, **{k: v for k, v in d.items() if k != "schema_version"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> Manifest:
        """A manifest from its JSON dict, validated (``validate``); unknown keys are dropped with a warning.
        A schema 1 manifest reads as schema 2 with the default crop rule."""
        d = upgrade(d, where)
        validate(d, where)
        d = _known_keys(d, where)
        return cls(
            name=d["name"], backbone=d["backbone"], classes=tuple(d["classes"]), input=InputSpec.from_dict(d["input"]),
            crop=CropRule.from_dict(d["crop"]),
            artifacts=tuple(Artifact(**{**a, "companions": tuple(a.get("companions", ()))}) for a in d["artifacts"]),
            parameters=d.get("parameters"),
            evaluation=d.get("evaluation", {}), provenance=d.get("provenance", {}),
        )

    def with_artifacts(self, artifacts: tuple[Artifact, ...]) -> Manifest:
        return replace(self, artifacts=artifacts)


def upgrade(d: Any, where: str = "manifest") -> Any:
    """A schema 1 manifest as schema 2: ``crop`` is the default rule (a ``crop`` key in a v1 file meant nothing
    and is ignored with a warning). Anything else is returned as it is, for ``validate`` to judge."""
    if not (isinstance(d, dict) and d.get("schema_version") == 1 and type(d["schema_version"]) is int):
        return d
    if "crop" in d:
        log.warning("warning: %s: ignoring key crop of a schema_version 1 manifest (the default crop rule applies)",
                    where)
    return {**d, "schema_version": SCHEMA_VERSION, "crop": DEFAULT_CROP.to_dict()}


def validate(d: dict[str, Any], where: str = "manifest") -> None:
    """Check a manifest dict (schema 1 or 2) against SCHEMA and the rules above; one clear error naming the first
    problem."""
    if isinstance(d, dict) and isinstance(d.get("schema_version"), int) and d["schema_version"] > SCHEMA_VERSION:
        raise ModelError(f"{where}: manifest schema_version {d['schema_version']} is newer than this fer-edge "
                         f"reads ({SCHEMA_VERSION}); upgrade fer-edge")
    d = upgrade(d, where)
    schema.check(d, SCHEMA, where, "manifest")
    check_input(d["input"], where)
    for i, a in enumerate(d["artifacts"]):
        check_file_name(a["file"], f"{where}: artifact {i} file")
        for c in a.get("companions", ()):
            check_file_name(c["file"], f"{where}: artifact {i} companion file")


def check_file_name(name: str, what: str = "file") -> str:
    """``name`` if it is a plain file name inside the bundle folder, else ModelError naming ``what``."""
    if (not isinstance(name, str) or not name or name in (".", "..") or name == MANIFEST or len(name) > 255
            or _BAD_NAME.search(name)):
        raise ModelError(f"{what} {_short(repr(name), 80)} is not a plain file name inside the bundle "
                         "(no folders, '..', absolute paths or control characters)")
    return name


_short = schema.short


def _known_keys(d: dict[str, Any], where: str) -> dict[str, Any]:
    """``d`` without the keys this fer-edge does not know (top level, input, artifacts, companions); one warning
    names them (the rule: unknown keys are ignored, so a newer manifest still loads in an older runtime)."""
    known_top = {f.name for f in fields(Manifest)}
    known_input = {f.name for f in fields(InputSpec)}
    known_crop = {f.name for f in fields(CropRule)}
    known_art = {f.name for f in fields(Artifact)}
    known_comp = {"file", "sha256", "bytes"}
    dropped: list[str] = [k for k in d if k not in known_top]
    out = {k: v for k, v in d.items() if k in known_top}
    dropped += [f"input/{k}" for k in d["input"] if k not in known_input]
    out["input"] = {k: v for k, v in d["input"].items() if k in known_input}
    dropped += [f"crop/{k}" for k in d["crop"] if k not in known_crop]
    out["crop"] = {k: v for k, v in d["crop"].items() if k in known_crop}
    arts = []
    for i, a in enumerate(d["artifacts"]):
        dropped += [f"artifacts/{i}/{k}" for k in a if k not in known_art]
        a = {k: v for k, v in a.items() if k in known_art}
        comps = []
        for j, c in enumerate(a.get("companions", ())):
            dropped += [f"artifacts/{i}/companions/{j}/{k}" for k in c if k not in known_comp]
            comps.append({k: v for k, v in c.items() if k in known_comp})
        if "companions" in a:
            a["companions"] = comps
        arts.append(a)
    out["artifacts"] = arts
    if dropped:
        log.warning("warning: %s: ignoring unknown manifest key(s) %s (written by a newer fer-edge?)", where,
                    _short(", ".join(dropped), 200))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle folder. Constructing one checks that every file its manifest names is a plain name
    and not a symlink (see the module docstring), so nothing outside ``path`` is ever read."""

    path: Path
    manifest: Manifest

    def __post_init__(self) -> None:
        for art in self.manifest.artifacts:
            for name in (art.file, *(c["file"] for c in art.companions)):
                self.file(name)

    def file(self, name: str) -> Path:
        """``path / name`` after checking that ``name`` is a plain file name and not a symlink."""
        check_file_name(name, f"{self.path}: manifest names a file")
        p = self.path / name
        if p.is_symlink():
            raise ModelError(f"{self.path}: {name} is a symlink; a bundle holds its files itself "
                             "(copy the file in place of the link)")
        return p

    def artifact_path(self, art: Artifact) -> Path:
        return self.file(art.file)

    def find(self, format: str | None = None, precision: str | None = None) -> list[Artifact]:
        """Artifacts matching a format and/or precision (exact manifest fields, never file names)."""
        return [a for a in self.manifest.artifacts
                if (format is None or a.format == format) and (precision is None or a.precision == precision)]

    def verify(self, art: Artifact) -> Path:
        """Path of ``art`` after checking its size and sha256 (and its companions') against the manifest."""
        for file, size, digest in ((art.file, art.bytes, art.sha256),
                                   *((c["file"], c["bytes"], c["sha256"]) for c in art.companions)):
            p = self.file(file)
            if not p.is_file():
                raise ModelError(f"{self.path}: artifact {file} listed in the manifest is missing")
            if p.stat().st_size != size or sha256_file(p) != digest:
                raise ModelError(f"{p}: sha256 does not match the manifest (tampered or corrupt); re-run convert")
        return self.artifact_path(art)


def copy_subset(bundle: Bundle, artifacts: list[Artifact] | tuple[Artifact, ...], dest: Path) -> Manifest:
    """Copy ``artifacts`` (each verified first, companions too) into the folder ``dest`` with a manifest that
    lists only them; evaluation and provenance are kept. The caller makes ``dest`` atomic (``atomic_dir``).
    Only plain file names directly in ``dest`` are written; a symlink found there is replaced, never followed."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for art in artifacts:
        bundle.verify(art)  # never copy a corrupt file (and never one outside the bundle)
        for name in (art.file, *(c["file"] for c in art.companions)):
            shutil.copy2(bundle.file(name), _writable(dest, name), follow_symlinks=False)
    manifest = bundle.manifest.with_artifacts(tuple(artifacts))
    _writable(dest, MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest


def _writable(dest: Path, name: str) -> Path:
    """``dest / name`` for writing: ``name`` a plain file name, any symlink already there removed (not followed)."""
    if name != MANIFEST:
        check_file_name(name, f"{dest}: file to write")
    p = dest / name
    if p.is_symlink():
        p.unlink()
    return p


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle folder (or its manifest.json); one ModelError line for anything wrong."""
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    mf = path / MANIFEST
    if not mf.is_file():
        what = "a folder" if path.is_dir() else ("a file" if path.exists() else "missing")
        raise ModelError(f"{path}: not a fer-edge bundle ({what}, no {MANIFEST}); make one with `fer-edge convert`")
    try:
        if mf.stat().st_size > MAX_MANIFEST_BYTES:
            raise ModelError(f"{mf}: {mf.stat().st_size:,} bytes; a manifest is at most {MAX_MANIFEST_BYTES:,}")
        d = json.loads(mf.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelError(f"{mf}: not valid JSON ({_short(exc, 120)})") from None
    except OSError as exc:
        raise ModelError(f"{mf}: cannot be read ({exc.strerror or exc})") from None
    return Bundle(path, Manifest.from_dict(d, str(mf)))


def default_bundle_path() -> Path:
    """The default model's int8 bundle shipped inside the package."""
    return Path(__file__).parent / "assets" / "default_bundle"
