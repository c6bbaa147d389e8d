"""The `fer` package (Haar + its TFLite model) on the clip (common.py): FPS and accuracy. Run it in a venv with
`pip install fer==25.10.3 "setuptools<81" "opencv-python-headless<5"` (its Haar cascades need OpenCV 4)."""

import os
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import cv2
from common import PASSES, first_sightings, load_clip, score
from fer.fer import FER

MAP = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
       "surprise": "surprise", "neutral": "neutral"}


def top(result: dict) -> str:
    return MAP[max(result["emotions"], key=result["emotions"].get)]


frames, truth, clip = load_clip()
det = FER(cascade_file=cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
det.detect_emotions(frames[0])  # warm-up
t = time.time()
for _ in range(PASSES):
    found = {i: [(tuple(d["box"]), top(d)) for d in det.detect_emotions(f)] for i, f in enumerate(frames)}
fps = PASSES * len(frames) / (time.time() - t)
faces, hit, right = score(found, truth)
# the model alone, on the known box of each face (first frame of its scene)
known = [(t, det.detect_emotions(frames[t.frame], face_rectangles=[t.box]))
         for t in first_sightings(truth) if t.label != "contempt"]
known = [(t, r) for t, r in known if r]
kr = sum(top(r[0]) == t.label for t, r in known)
print(f"fer: {fps:.1f} FPS over {PASSES} x {len(frames)} frames; found {hit}/{faces} face-frames (7 classes); "
      f"accuracy on found {100 * right / max(hit, 1):.1f}%; on known boxes {100 * kr / max(len(known), 1):.1f}% "
      f"({len(known)} faces); clip {clip}")
