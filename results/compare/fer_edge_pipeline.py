import csv
import time

import cv2

from fer_edge.runtime.pipeline import Pipeline

root = "/work/main/fer_edge/assets/sample"
cap = cv2.VideoCapture(f"{root}/sample.mp4")
frames = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    frames.append(f)
truth = list(csv.DictReader(open(f"{root}/faces.csv")))
p = Pipeline.from_bundle(threads=2, smooth=0.0)
p.process(frames[0])
p = Pipeline.from_bundle(threads=2, smooth=0.0)


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


t = time.time()
found = {i: p.process(f).faces for i, f in enumerate(frames)}
fps = len(frames) / (time.time() - t)
right = hit = faces = 0
for row in truth:
    if row["label"] == "contempt":
        continue
    for i in range(int(row["first_frame"]), int(row["last_frame"]) + 1):
        faces += 1
        box = tuple(int(row[k]) for k in "xywh")
        best = max(found[i], key=lambda e: iou(e.face.box, box), default=None)
        if best is None or iou(best.face.box, box) < 0.3:
            continue
        hit += 1
        right += best.label == row["label"]
print(
    f"fer-edge: {fps:.1f} FPS over {len(frames)} frames; found {hit}/{faces} face-frames (7 classes); "
    f"accuracy on found {100 * right / max(hit, 1):.1f}%"
)
