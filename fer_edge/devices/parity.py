"""Cross-architecture parity of two `fer-edge run --json` outputs on the same source: frames with the same face
count, faces matched by box overlap, label agreement on matched faces; and, on the bundled sample clip, faces found
and labels right against its faces.csv (the demo's scoring: each scene's first frame, IoU > 0.3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from fer_edge.devices.rootfs import EmulationError
from fer_edge.runtime.geometry import iou_matrix
from fer_edge.runtime.outputs import FRAME_SCHEMA
from fer_edge.runtime.sample import SampleFace

MATCH_IOU = 0.5
TRUTH_IOU = 0.3  # as the demo scores the sample


def parse_lines(lines: list[str], where: str) -> list[dict[str, Any]]:
    """Frame records of JSON lines, each validated against FRAME_SCHEMA; a bad line is an error naming it."""
    validator = jsonschema.Draft202012Validator(FRAME_SCHEMA)
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise EmulationError(f"{where}:{n}: not JSON ({e})") from None
        err = next(iter(validator.iter_errors(rec)), None)
        if err is not None:
            raise EmulationError(f"{where}:{n}: not a fer-edge frame record: {err.message}")
        out.append(rec)
    frames = [r["frame"] for r in out]
    if frames != sorted(set(frames)):
        raise EmulationError(f"{where}: frame indices are not strictly increasing")
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """``parse_lines`` of a JSON-lines file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise EmulationError(f"{path}: cannot read the JSON lines ({e.strerror})") from None
    return parse_lines(text.splitlines(), str(path))


def _boxes(rec: dict[str, Any]) -> np.ndarray:
    return np.asarray([f["box"] for f in rec["faces"]], np.float32).reshape(-1, 4)


def match(a: dict[str, Any], b: dict[str, Any], min_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """Faces of frame record ``a`` paired with those of ``b``: greedy by IoU, each face used once, IoU >= min_iou."""
    m = iou_matrix(_boxes(a), _boxes(b))
    pairs: list[tuple[int, int, float]] = []
    while m.size and m.max() >= min_iou:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        pairs.append((int(i), int(j), float(m[i, j])))
        m[i, :], m[:, j] = -1, -1
    return pairs


def compare(ref: list[dict[str, Any]], other: list[dict[str, Any]], min_iou: float = MATCH_IOU) -> dict[str, Any]:
    """Parity of ``other`` (the emulated device) against ``ref`` (x86) over the frames both hold."""
    a, b = {r["frame"]: r for r in ref}, {r["frame"]: r for r in other}
    common = sorted(set(a) & set(b))
    same = matched = agree = 0
    ious, conf_diff, prob_diff = [], [], []
    for f in common:
        same += len(a[f]["faces"]) == len(b[f]["faces"])
        for i, j, overlap in match(a[f], b[f], min_iou):
            fa, fb = a[f]["faces"][i], b[f]["faces"][j]
            matched += 1
            agree += fa["label"] == fb["label"]
            ious.append(overlap)
            conf_diff.append(abs(fa["confidence"] - fb["confidence"]))
            keys = fa["probabilities"].keys() & fb["probabilities"].keys()
            prob_diff.append(max((abs(fa["probabilities"][k] - fb["probabilities"][k]) for k in keys), default=0.0))
    faces_ref = sum(len(a[f]["faces"]) for f in common)
    faces_other = sum(len(b[f]["faces"]) for f in common)
    return {
        "frames": len(common), "frames_only_x86": len(set(a) - set(b)), "frames_only_emulated": len(set(b) - set(a)),
        "frames_same_face_count": same, "frames_same_face_count_rate": _rate(same, len(common)),
        "faces_x86": faces_ref, "faces_emulated": faces_other, "faces_matched": matched, "match_iou": min_iou,
        "label_agreement": _rate(agree, matched), "labels_agreeing": agree,
        "box_iou_mean": _mean(ious), "confidence_abs_diff_mean": _mean(conf_diff),
        "probability_abs_diff_max": round(max(prob_diff), 5) if prob_diff else None,
    }


def truth(records: list[dict[str, Any]], faces: list[SampleFace]) -> dict[str, Any]:
    """Faces found and labels right against the sample's faces.csv, over the scenes whose first frame was run."""
    by_frame = {r["frame"]: r for r in records}
    scored = [t for t in faces if t.first_frame in by_frame]
    found = right = 0
    for t in scored:
        rec = by_frame[t.first_frame]
        if not rec["faces"]:
            continue
        overlaps = iou_matrix(np.asarray([t.box], np.float32), _boxes(rec))[0]
        best = int(overlaps.argmax())
        if overlaps[best] > TRUTH_IOU:
            found += 1
            right += rec["faces"][best]["label"] == t.label
    return {"faces": len(scored), "found": found, "found_rate": _rate(found, len(scored)),
            "labels_right": right, "accuracy_found": _rate(right, found)}


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None
