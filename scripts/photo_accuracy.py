"""Accuracy through the runtime on full photos the model never trained on (JAFFE, 213 photos): the detector's crop
as `fer-edge run` makes it, the same crop rotated so the eyes are level (BlazeFace keypoints 0 and 1), both again on
photos tilted by a random angle up to +-TILT degrees, and the dataset reader's own crop.

    python scripts/photo_accuracy.py [--data ../shared/data/jaffe] [--bundle B] [--tilt 20] [--out results/photos]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import write_json
from fer_edge.data import load_dataset
from fer_edge.runtime.geometry import clip_box
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.types import Face

CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "NE": "neutral", "SA": "sadness",
         "SU": "surprise"}


def eye_aligned(frame: np.ndarray, face: Face, margin: float = 0.08) -> np.ndarray:
    """The square crop of ``face`` (``margin`` per side) rotated about its centre so the eyes are level."""
    (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
    angle = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    x, y, w, h = clip_box(face.box, frame.shape)
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[:, 2] += (side / 2 - cx, side / 2 - cy)
    s = max(1, round(side))
    return cv2.warpAffine(frame, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/jaffe")
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--tilt", type=float, default=20.0)
    ap.add_argument("--out", default="results/photos")
    a = ap.parse_args()
    pipe = Pipeline.from_bundle(a.bundle, detector="blazeface")
    files = sorted(Path(a.data).glob("*.tiff"))
    rng = np.random.default_rng(0)
    hits = {"detector_crop": 0, "eye_aligned": 0, "tilted_detector_crop": 0, "tilted_eye_aligned": 0}
    found = {"upright": 0, "tilted": 0}
    for f in files:
        truth = CODES[f.name.split(".")[1][:2]]
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        tilted = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-a.tilt, a.tilt), 1.0),
                                (w, h), borderMode=cv2.BORDER_REPLICATE)
        for kind, frame in (("upright", img), ("tilted", tilted)):
            faces = pipe.detector.detect(frame)
            if not faces:
                continue
            found[kind] += 1
            face = max(faces, key=lambda x: x.box[2] * x.box[3])
            probs = pipe.classify([pipe.crops(frame, [face])[0], eye_aligned(frame, face)])
            prefix = "" if kind == "upright" else "tilted_"
            for key, row in zip(("detector_crop", "eye_aligned"), probs, strict=True):
                hits[prefix + key] += pipe.classes[int(np.argmax(row))] == truth
    ds = load_dataset(a.data)
    probs = pipe.classify(list(ds.images), bgr=False)
    pred = np.array([pipe.classes[i] for i in probs.argmax(1)])
    truth = np.array([ds.classes[i] for i in ds.local_labels()])
    out = {"photos": len(files), "found": found, "model": pipe.classifier.describe(), "tilt_degrees": a.tilt,
           "accuracy": {k: v / len(files) for k, v in hits.items()},
           "dataset_crop_accuracy": float((pred == truth).mean())}
    write_json(Path(a.out) / "jaffe.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
