"""fer-edge's runtime pipeline (bundled int8 model, BlazeFace) on the demo clip: FPS and accuracy.
``python fer_edge_pipeline.py [EVERY]``: detect every EVERY frames (default 1), IoU-track in between."""

import sys
import time

from common import load_sample, score

from fer_edge.runtime.pipeline import Pipeline

frames, truth = load_sample()
every = int(sys.argv[1]) if len(sys.argv) > 1 else 1
p = Pipeline.from_bundle(threads=2, smooth=0.0, every=every)
p.process(frames[0])  # warm-up
t = time.time()
found = {i: [(e.face.box, e.label) for e in p.process(f).faces] for i, f in enumerate(frames)}
fps = len(frames) / (time.time() - t)
faces, hit, right = score(found, truth)
print(f"fer-edge (detect every {every}): {fps:.1f} FPS over {len(frames)} frames; "
      f"found {hit}/{faces} face-frames (7 classes); "
      f"accuracy on found {100 * right / max(hit, 1):.1f}%")
