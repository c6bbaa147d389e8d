"""The `fer` package (Haar + its TFLite model) on the demo clip: FPS and accuracy. Run it in a venv with
`pip install fer==25.10.3 "setuptools<81" "opencv-python-headless<5"` (its Haar cascades need OpenCV 4)."""

import os
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import cv2
from common import PASSES, load_sample, score, truth_box
from fer.fer import FER

MAP = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
       "surprise": "surprise", "neutral": "neutral"}


def top(result: dict) -> str:
    return MAP[max(result["emotions"], key=result["emotions"].get)]


frames, truth = load_sample()
det = FER(cascade_file=cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
det.detect_emotions(frames[0])  # warm-up
t = time.time()
for _ in range(PASSES):
    found = {i: [(tuple(d["box"]), top(d)) for d in det.detect_emotions(f)] for i, f in enumerate(frames)}
fps = PASSES * len(frames) / (time.time() - t)
faces, hit, right = score(found, truth)
# the model alone, on the known box of each face (first frame of its scene)
known = [(row, det.detect_emotions(frames[int(row["first_frame"])], face_rectangles=[truth_box(row)]))
         for row in truth if row["label"] != "contempt"]
known = [(row, r) for row, r in known if r]
kr = sum(top(r[0]) == row["label"] for row, r in known)
print(f"fer: {fps:.1f} FPS over {PASSES} x {len(frames)} frames; found {hit}/{faces} face-frames (7 classes); "
      f"accuracy on found {100 * right / max(hit, 1):.1f}%; on known boxes {100 * kr / max(len(known), 1):.1f}% "
      f"({len(known)} faces)")
