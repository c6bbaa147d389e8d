"""The model bundle: a folder of artifacts plus manifest.json, the one source of truth for class order,
input size, colour, normalization and each artifact's precision. Numpy + OpenCV only (used on devices)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_edge.errors import ModelError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int8_float_io")
STATUSES = ("passed", "degraded", "failed", "not_validated")

_QUANT = {"type": ["object", "null"], "required": ["scale", "zero_point"],
          "properties": {"scale": {"type": "number"}, "zero_point": {"type": "integer"}}}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge bundle manifest",
    "type": "object",
    "required": ["schema_version", "name", "backbone", "classes", "input", "artifacts"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "name": {"type": "string", "minLength": 1},
        "backbone": {"type": "string"},
        "classes": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
        "parameters": {"type": ["integer", "null"]},
        "input": {
            "type": "object",
            "required": ["height", "width", "channels", "color", "scale", "mean", "std"],
            "properties": {
                "height": {"type": "integer", "minimum": 8}, "width": {"type": "integer", "minimum": 8},
                "channels": {"enum": [1, 3]}, "color": {"enum": ["gray", "rgb", "bgr"]},
                "layout": {"enum": ["NHWC"]}, "scale": {"type": "number"},
                "mean": {"type": "array", "items": {"type": "number"}},
                "std": {"type": "array", "items": {"type": "number"}},
            },
        },
        "artifacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["format", "precision", "file", "sha256", "bytes", "input_dtype", "output_dtype"],
                "properties": {
                    "format": {"type": "string"}, "precision": {"enum": list(PRECISIONS)},
                    "file": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "bytes": {"type": "integer", "minimum": 1},
                    "input_dtype": {"type": "string"}, "output_dtype": {"type": "string"},
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
class InputSpec:
    """How a face crop becomes model input: resize to (height, width), convert colour, (x*scale - mean) / std."""

    height: int
    width: int
    channels: int = 1
    color: str = "gray"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NHWC"

    def prepare(self, faces: list[np.ndarray] | np.ndarray, bgr: bool = False) -> np.ndarray:
        """uint8 face crops (gray (H, W[, 1]) or colour (H, W, 3), any size) -> float32 (N, h, w, c).

        Colour crops are taken as RGB, or BGR when ``bgr`` (frames straight from OpenCV).
        """
        out = np.empty((len(faces), self.height, self.width, self.channels), dtype=np.float32)
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        for i, face in enumerate(faces):
            img = _convert_color(face, self.color, bgr)
            h, w = img.shape[:2]
            if (h, w) != (self.height, self.width):
                interp = cv2.INTER_AREA if h > self.height else cv2.INTER_LINEAR
                img = cv2.resize(img, (self.width, self.height), interpolation=interp)
            img = img.reshape(self.height, self.width, self.channels).astype(np.float32)
            out[i] = (img * self.scale - mean) / std
        return out


def _convert_color(img: np.ndarray, color: str, bgr: bool) -> np.ndarray:
    gray_in = img.ndim == 2 or img.shape[-1] == 1
    if color == "gray":
        if gray_in:
            return img.reshape(img.shape[:2])
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
    if gray_in:
        return np.repeat(img.reshape(*img.shape[:2], 1), 3, axis=2)
    if (color == "rgb") == bgr:  # rgb wanted from bgr input, or bgr wanted from rgb input
        return img[..., ::-1]
    return img


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
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["input"]["mean"], d["input"]["std"] = list(self.input.mean), list(self.input.std)
        d["artifacts"] = [{**asdict(a), "companions": [dict(c) for c in a.companions]} for a in self.artifacts]
        return {"schema_version": SCHEMA_VERSION, **{k: v for k, v in d.items() if k != "schema_version"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> Manifest:
        validate(d, where)
        inp = dict(d["input"])
        inp["mean"], inp["std"] = tuple(inp["mean"]), tuple(inp["std"])
        return cls(
            name=d["name"], backbone=d["backbone"], classes=tuple(d["classes"]), input=InputSpec(**inp),
            artifacts=tuple(Artifact(**{**a, "companions": tuple(a.get("companions", ()))}) for a in d["artifacts"]),
            parameters=d.get("parameters"),
            evaluation=d.get("evaluation", {}), provenance=d.get("provenance", {}),
        )

    def with_artifacts(self, artifacts: tuple[Artifact, ...]) -> Manifest:
        return replace(self, artifacts=artifacts)


def validate(d: dict[str, Any], where: str = "manifest") -> None:
    """Check a manifest dict against SCHEMA; one clear error naming the first problem."""
    import jsonschema

    try:
        jsonschema.validate(d, SCHEMA)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ModelError(f"{where}: invalid manifest at {path}: {exc.message[:160]}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle folder."""

    path: Path
    manifest: Manifest

    def artifact_path(self, art: Artifact) -> Path:
        return self.path / art.file

    def find(self, format: str | None = None, precision: str | None = None) -> list[Artifact]:
        """Artifacts matching a format and/or precision (exact manifest fields, never file names)."""
        return [a for a in self.manifest.artifacts
                if (format is None or a.format == format) and (precision is None or a.precision == precision)]

    def verify(self, art: Artifact) -> Path:
        """Path of ``art`` after checking its size and sha256 (and its companions') against the manifest."""
        for file, size, digest in ((art.file, art.bytes, art.sha256),
                                   *((c["file"], c["bytes"], c["sha256"]) for c in art.companions)):
            p = self.path / file
            if not p.is_file():
                raise ModelError(f"{self.path}: artifact {file} listed in the manifest is missing")
            if p.stat().st_size != size or sha256_file(p) != digest:
                raise ModelError(f"{p}: sha256 does not match the manifest (tampered or corrupt); re-run convert")
        return self.artifact_path(art)


def copy_subset(bundle: Bundle, artifacts: list[Artifact] | tuple[Artifact, ...], dest: Path) -> Manifest:
    """Copy ``artifacts`` (each verified first, companions too) into the folder ``dest`` with a manifest that
    lists only them; evaluation and provenance are kept. The caller makes ``dest`` atomic (``atomic_dir``)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for art in artifacts:
        bundle.verify(art)  # never copy a corrupt file
        for name in (art.file, *(c["file"] for c in art.companions)):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle.path / name, dest / name)
    manifest = bundle.manifest.with_artifacts(tuple(artifacts))
    (dest / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle folder (or its manifest.json)."""
    path = Path(path)
    if path.is_file() and path.name == MANIFEST:
        path = path.parent
    mf = path / MANIFEST
    if not mf.is_file():
        what = "a folder" if path.is_dir() else ("a file" if path.exists() else "missing")
        raise ModelError(f"{path}: not a fer-edge bundle ({what}, no {MANIFEST}); make one with `fer-edge convert`")
    try:
        d = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{mf}: not valid JSON ({exc})") from None
    return Bundle(path, Manifest.from_dict(d, str(mf)))


def default_bundle_path() -> Path:
    """The default model's int8 bundle shipped inside the package."""
    return Path(__file__).parent / "assets" / "default_bundle"
