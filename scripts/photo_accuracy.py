"""Accuracy through the runtime on full photos the model never trained on (JAFFE, 213 photos), beside the dataset
reader's own crop.

Each photo is run through ``Pipeline.process`` as ``fer-edge run`` runs it (BlazeFace, the run defaults, the largest
face), upright and turned by each of ``--tilts`` degrees about its centre, twice: eye alignment off (the detector's
square crop) and on (``CropRule.cut``: rotated so the eyes are level when BlazeFace's eye keypoints are tilted
``ALIGN_MIN_ROLL`` degrees or more). Per condition and method: accuracy, the mean probability of the true class,
how many predictions alignment changed (won: now right, lost: now wrong; the exact McNemar p of won against lost)
and how many differ from the same photo's upright prediction. ``scale_by_angle``: the detector's box and the aligned
crop against the upright ones. ``min_roll_sweep``: accuracy (and predictions that differ from upright) when
aligning from each eye-roll threshold.

    python scripts/photo_accuracy.py [--data ../shared/data/jaffe] [--bundle B] [--tilts -30,-20,-10,10,20,30]
        [--out results/photos]
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import write_json
from fer_edge.data import load_dataset
from fer_edge.data.jaffe import parse_name
from fer_edge.data.types import FaceDataset
from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import ALIGN_MIN_ROLL, eye_roll
from fer_edge.runtime.geometry import clip_box
from fer_edge.runtime.options import DEFAULTS
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.types import Face, FrameResult

SWEEP = (0.0, 2.0, 3.0, 5.0, 8.0, 12.0)


def turned(img: np.ndarray, degrees: float) -> np.ndarray:
    """``img`` turned counter-clockwise by ``degrees`` about its centre (edges replicated)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return img if degrees == 0 else cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def largest(result: FrameResult) -> tuple[np.ndarray, Face] | None:
    """(probabilities in class order, face) of the largest face in a FrameResult, or None."""
    if not result.faces:
        return None
    e = max(result.faces, key=lambda x: x.face.box[2] * x.face.box[3])
    return np.array(list(e.probabilities.values()), np.float64), e.face


def mcnemar_p(won: int, lost: int) -> float:
    """Exact two-sided McNemar p-value of ``won`` against ``lost`` discordant pairs."""
    n = won + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(won, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def summary(pred: np.ndarray, prob_true: np.ndarray, truth: np.ndarray, base: np.ndarray | None,
            upright: np.ndarray | None) -> dict[str, float | int]:
    """One method on one condition; ``pred`` -1 where no face was found."""
    right = pred == truth
    out: dict[str, float | int] = {"found": int((pred >= 0).sum()), "accuracy": round(float(right.mean()), 4),
                                   "mean_true_probability": round(float(prob_true.mean()), 4)}
    if base is not None:
        base_right = base == truth
        won, lost = int((right & ~base_right).sum()), int((~right & base_right).sum())
        out |= {"changed_vs_plain": int((pred != base).sum()), "won": won, "lost": lost,
                "mcnemar_p": round(mcnemar_p(won, lost), 3)}
    if upright is not None:
        out["differs_from_upright"] = int((pred != upright).sum())
    return out


def mean_ratio(a: np.ndarray, b: np.ndarray) -> float | None:
    """The mean of ``a / b`` over the photos where both were measured (a face found), or None where none was."""
    r = a / b
    r = r[np.isfinite(r)]
    return round(float(r.mean()), 3) if r.size else None


def photos(data: Path) -> tuple[list[Path], FaceDataset]:
    """The JAFFE photos of ``data`` (every .tiff named like KA.AN1.39.tiff) and the dataset reader's view of them,
    checked before any work: a missing or empty folder, or a file named otherwise, is refused."""
    if not data.is_dir():
        raise FerEdgeError(f"--data {data}: no such folder")
    files = sorted(data.glob("*.tiff"))
    if not files:
        raise FerEdgeError(f"--data {data}: no JAFFE .tiff photos in it")
    odd = [f.name for f in files if parse_name(f.name) is None]
    if odd:
        raise FerEdgeError(f"--data {data}: {odd[0]} is not a JAFFE photo name (like KA.AN1.39.tiff)"
                           + (f", nor {len(odd) - 1} more" if len(odd) > 1 else ""))
    return files, load_dataset(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/jaffe")
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--tilts", default="-30,-20,-10,10,20,30", help="degrees, comma-separated")
    ap.add_argument("--out", default="results/photos")
    a = ap.parse_args()
    try:
        measure(a)
    except FerEdgeError as e:
        sys.exit(f"error: {e}")


def measure(a: argparse.Namespace) -> None:
    """Everything main does once the arguments are read."""
    try:
        tilts = [float(t) for t in a.tilts.split(",") if t.strip()]
    except ValueError:
        raise FerEdgeError(f"--tilts {a.tilts}: not comma-separated degrees") from None
    files, ds = photos(Path(a.data))
    kw = DEFAULTS.pipeline_kwargs() | {"detector": "blazeface"}
    pipes = {"plain": Pipeline.from_bundle(a.bundle, **(kw | {"align": False})),
             "aligned": Pipeline.from_bundle(a.bundle, **(kw | {"align": True}))}
    classes = pipes["plain"].classes
    missing = sorted({parse_name(f.name)[1] for f in files} - set(classes))
    if missing:
        raise FerEdgeError(f"--bundle {a.bundle} has no {', '.join(missing)} output (it knows {', '.join(classes)})")
    truth = np.array([classes.index(parse_name(f.name)[1]) for f in files])
    conds = [0.0, *tilts]
    n = len(files)
    pred = {m: np.full((len(conds), n), -1) for m in (*pipes, "always")}
    ptrue = {m: np.zeros((len(conds), n)) for m in pred}
    roll = np.full((len(conds), n), np.nan)
    side = {k: np.full((len(conds), n), np.nan) for k in ("box", "aligned_crop")}  # face box / aligned crop, px
    for j, f in enumerate(files):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        for i, deg in enumerate(conds):
            frame = turned(img, deg)
            for m, pipe in pipes.items():
                pipe.reset()
                got = largest(pipe.process(frame))
                if got is None:
                    continue
                probs, face = got
                pred[m][i, j], ptrue[m][i, j] = int(probs.argmax()), probs[truth[j]]
            if got is None:
                continue
            r = eye_roll(face.keypoints)
            roll[i, j] = np.nan if r is None else r
            box = clip_box(face.box, frame.shape)
            crop = pipes["aligned"].crop.cut(frame, box, face.keypoints, min_roll=0.0)
            side["box"][i, j], side["aligned_crop"][i, j] = box[2], crop.shape[0]
            probs = pipes["aligned"].classify([crop])[0]
            pred["always"][i, j], ptrue["always"][i, j] = int(probs.argmax()), probs[truth[j]]
    tilted = slice(1, len(conds))
    report: dict[str, dict] = {}
    for name, rows in (("upright", slice(0, 1)), ("tilted", tilted)):
        t = np.broadcast_to(truth, pred["plain"][rows].shape)
        up = {m: np.broadcast_to(pred[m][0], t.shape) for m in pred}
        report[name] = {
            "detector_crop": summary(pred["plain"][rows], ptrue["plain"][rows], t, None,
                                     up["plain"] if name == "tilted" else None),
            "eye_aligned": summary(pred["aligned"][rows], ptrue["aligned"][rows], t, pred["plain"][rows],
                                   up["aligned"] if name == "tilted" else None),
        }
    per_tilt = {}
    for i, deg in enumerate(conds[1:], 1):
        per_tilt[f"{deg:g}"] = {m: round(float((pred[k][i] == truth).mean()), 4)
                                for m, k in (("detector_crop", "plain"), ("eye_aligned", "aligned"))}
    # BlazeFace's box of a turned face shrinks by about cos(angle); CropRule.cut grows it back by 1 / cos(roll)
    plain_crop = np.array([pipes["plain"].crop.box((0, 0, b, b), (10**6, 10**6))[2] if np.isfinite(b) else np.nan
                           for b in side["box"][0]])
    scale = {f"{deg:g}": {"box_vs_upright": mean_ratio(side["box"][i], side["box"][0]),
                          "aligned_crop_vs_upright_crop": mean_ratio(side["aligned_crop"][i], plain_crop)}
             for i, deg in enumerate(conds[1:], 1)}
    sweep = {}
    for t in SWEEP:
        use = np.abs(np.nan_to_num(roll, nan=0.0)) >= t
        p = np.where(use, pred["always"], pred["plain"])
        sweep[f"{t:g}"] = {"upright_accuracy": round(float((p[0] == truth).mean()), 4),
                           "tilted_accuracy": round(float((p[tilted] == truth).mean()), 4),
                           "upright_aligned_photos": int(use[0].sum()),
                           "tilted_differs_from_upright": int((p[tilted] != p[0]).sum())}
    dpred_ds = pipes["plain"].classify(list(ds.images), bgr=False).argmax(1)
    dtruth = np.array([classes.index(ds.classes[int(i)]) for i in ds.local_labels()])
    by_file = dict(zip((str(x) for x in ds.files), dpred_ds.tolist(), strict=True))
    dpred = np.array([by_file.get(f.name, -1) for f in files])
    up_roll = np.abs(roll[0][np.isfinite(roll[0])])
    out = {
        "command": shlex.join(["python", "scripts/photo_accuracy.py", *sys.argv[1:]]),
        "photos": n, "model": pipes["plain"].classifier.describe(), "detector": pipes["plain"].describe(),
        "tilts_degrees": tilts, "align_min_roll_degrees": ALIGN_MIN_ROLL,
        "upright_eye_roll_degrees": {"median_abs": round(float(np.median(up_roll)), 2) if up_roll.size else None,
                                     "max_abs": round(float(up_roll.max()), 2) if up_roll.size else None,
                                     "at_least_min_roll": int((up_roll >= ALIGN_MIN_ROLL).sum())},
        **report, "tilted_accuracy_by_angle": per_tilt, "scale_by_angle": scale, "min_roll_sweep": sweep,
        "dataset_crop": {"accuracy": round(float((dpred_ds == dtruth).mean()), 4),
                         "differs_from_detector_crop": int((dpred != pred["plain"][0]).sum())},
        "predicted_classes_upright": {classes[k]: int(v) for k, v in
                                      enumerate(np.bincount(pred["plain"][0][pred["plain"][0] >= 0],
                                                            minlength=len(classes)))},
    }
    write_json(Path(a.out) / "jaffe.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
