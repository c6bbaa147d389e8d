"""Side by side on the fer-edge demo clip: the `fer` package (Haar + its TFLite model) FPS and accuracy."""

import csv
import os
import time

import cv2

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from fer.fer import FER

MAP = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
root = "/work/main/fer_edge/assets/sample"
cap = cv2.VideoCapture(f"{root}/sample.mp4")
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(f)
truth = list(csv.DictReader(open(f"{root}/faces.csv")))
det = FER(cascade_file=cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


det.detect_emotions(frames[0])
t = time.time()
found = {}
for i, f in enumerate(frames):
    found[i] = det.detect_emotions(f)
fps = len(frames) / (time.time() - t)
right = total = hit = 0
faces = 0
for row in truth:
    if row["label"] == "contempt":
        continue
    for i in range(int(row["first_frame"]), int(row["last_frame"]) + 1):
        faces += 1
        box = tuple(int(row[k]) for k in "xywh")
        best = max(found[i], key=lambda d: iou(d["box"], box), default=None)
        if best is None or iou(best["box"], box) < 0.3:
            continue
        hit += 1
        pred = MAP[max(best["emotions"], key=best["emotions"].get)]
        right += pred == row["label"]
# model only, on the known boxes (one call per face)
kr = kt = 0
for row in truth:
    if row["label"] == "contempt":
        continue
    i = int(row["first_frame"])
    box = tuple(int(row[k]) for k in "xywh")
    r = det.detect_emotions(frames[i], face_rectangles=[box])
    if r:
        kt += 1
        kr += MAP[max(r[0]["emotions"], key=r[0]["emotions"].get)] == row["label"]
print(
    f"fer: {fps:.1f} FPS over {len(frames)} frames; found {hit}/{faces} face-frames (7 classes); "
    f"accuracy on found {100 * right / max(hit, 1):.1f}%; on known boxes {100 * kr / max(kt, 1):.1f}% ({kt} faces)"
)
