"""Benchmark records: a versioned JSON schema, validation, merging runs from several devices, CSV rows.

A results document holds ``runs``; each run is one ``fer-edge bench`` on one device with its rows. Merging
concatenates runs (a run seen twice, by id, is kept once), so results from a Pi, a Jetson and a laptop can be
rendered side by side.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError

SCHEMA_VERSION = 1
KIND = "fer-edge-bench"
ROW_STATUSES = ("passed", "degraded", "failed", "skipped")  # skipped: no backend installed runs the format

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_LOAD = {"type": ["array", "null"], "items": {"type": "number"}}  # 1, 5 and 15 minute load averages

# Every row carries every column (null where it does not apply; the *_note columns say why).
ROW_PROPERTIES: dict[str, Any] = {
    "model": _STR, "bundle": _STR, "backbone": _STR, "format": _STR, "precision": _STR, "backend": _STR,
    "backend_version": _NSTR, "threads": {"type": "integer", "minimum": 1}, "file": _STR,
    "status": {"enum": list(ROW_STATUSES)}, "reason": _STR,
    "size_bytes": _INT, "size_mb": _NUM, "parameters": _INT, "parameters_note": _STR,
    "flops": _INT, "flops_note": _STR,
    "accuracy": _NUM, "macro_f1": _NUM, "accuracy_delta": _NUM, "agreement": _NUM, "reference": _NSTR,
    "eval_faces": _INT, "accuracy_note": _STR,
    "per_class_f1": {"type": ["object", "null"], "additionalProperties": _NUM},
    "latency_mean_ms": _NUM, "latency_p50_ms": _NUM, "latency_p90_ms": _NUM, "latency_p99_ms": _NUM,
    "latency_std_ms": _NUM, "latency_min_ms": _NUM, "latency_max_ms": _NUM, "latency_n": _INT,
    "latency_samples": {"type": ["array", "null"], "items": {"type": "number"}},
    "round_p50_ms": {"type": ["array", "null"], "items": {"type": "number"}},
    "round_cv": _NUM, "round_range": _NUM,
    "throughput_fps": _NUM, "best_batch": _INT,
    "throughput_by_batch": {"type": ["object", "null"], "additionalProperties": {"type": ["number", "string"]}},
    "load_ms": _NUM, "first_inference_ms": _NUM, "peak_rss_mb": _NUM, "rss_baseline_mb": _NUM,
    "rss_delta_mb": _NUM, "wall_s": _NUM, "pareto": {"type": "boolean"},
}
ROW_FIELDS: tuple[str, ...] = tuple(ROW_PROPERTIES)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fer-edge benchmark results",
    "type": "object",
    "required": ["schema_version", "kind", "runs"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": KIND},
        "runs": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "created", "device", "settings", "data", "rows", "pipeline"],
            "properties": {
                "id": {"type": "string", "minLength": 1}, "created": _STR,
                "device": {"type": "object", "required": ["name", "cpu", "arch", "cores", "os", "python", "backends"],
                           "properties": {"name": _STR, "cpu": _STR, "arch": _STR, "cores": {"type": "integer"},
                                          "os": _STR, "python": _STR, "backends": {"type": "object"},
                                          "load_average": _LOAD, "load_average_end": _LOAD}},
                "settings": {"type": "object"},
                "data": {"type": "object"},
                "wall_s": _NUM,
                "rows": {"type": "array", "items": {"type": "object", "required": list(ROW_FIELDS),
                                                     "properties": ROW_PROPERTIES}},
                "pipeline": {"type": "array", "items": {"type": "object", "required": ["status", "reason"]}},
            },
        }},
    },
}

# Columns of results.csv (device first, distributions and per-class dicts left to the JSON).
CSV_FIELDS: tuple[str, ...] = ("run", "device", *(f for f in ROW_FIELDS if f not in
                                                   ("latency_samples", "per_class_f1", "throughput_by_batch",
                                                    "round_p50_ms")))


def empty_row(**fields: Any) -> dict[str, Any]:
    """A row with every column present (null / empty note) and ``fields`` filled in."""
    row: dict[str, Any] = {k: None for k in ROW_FIELDS}
    row.update(reason="", parameters_note="", flops_note="", accuracy_note="", pareto=False)
    unknown = set(fields) - set(ROW_FIELDS)
    if unknown:
        raise KeyError(f"unknown result columns: {sorted(unknown)}")
    row.update(fields)
    return row


def document(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": KIND, "runs": runs}


def validate(doc: dict[str, Any], where: str = "results") -> dict[str, Any]:
    """Check a results document against SCHEMA; one clear error naming the first problem."""
    import jsonschema

    if isinstance(doc, dict) and doc.get("schema_version") not in (None, SCHEMA_VERSION):
        raise FerEdgeError(f"{where}: results schema_version {doc.get('schema_version')} is not supported "
                           f"(this fer-edge reads {SCHEMA_VERSION})")
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise FerEdgeError(f"{where}: invalid results at {path}: {exc.message[:160]}") from None
    return doc


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a results.json (or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FerEdgeError(f"{path}: no such results file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FerEdgeError(f"{path}: not valid JSON ({exc})") from None
    return validate(doc, str(path))


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document with the runs of all ``docs`` (each validated), in order, duplicates (same id) once."""
    runs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        validate(doc, f"results #{i + 1}")
        for run in doc["runs"]:
            if run["id"] not in seen:
                seen.add(run["id"])
                runs.append(run)
    return validate(document(runs), "merged results")


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (latency, accuracy) points: True where no other point is at least as fast and as accurate and
    strictly better in one of the two."""
    flags = []
    for i, (lat, acc) in enumerate(points):
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc)
                        for j, (l2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def mark_pareto(rows: list[dict[str, Any]]) -> None:
    """Set ``pareto`` on the rows with accuracy and p50 latency that lie on the accuracy-vs-latency front."""
    scored = [r for r in rows if r["accuracy"] is not None and r["latency_p50_ms"] is not None]
    for r, flag in zip(scored, pareto_front([(r["latency_p50_ms"], r["accuracy"]) for r in scored]), strict=True):
        r["pareto"] = flag


def to_csv(doc: dict[str, Any]) -> str:
    """All rows of all runs as CSV (one line per row, device and run id first)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for run in doc["runs"]:
        for row in run["rows"]:
            w.writerow({**{k: "" if v is None else v for k, v in row.items()},
                        "run": run["id"], "device": run["device"]["name"]})
    return buf.getvalue()
