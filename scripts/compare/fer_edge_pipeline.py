"""fer-edge's runtime pipeline (bundled int8 model, BlazeFace) on the clip (common.py): FPS and accuracy.

    python scripts/compare/fer_edge_pipeline.py [--every N] [--threads T] [--no-overlap] [--reference-detector]

``--every``: detect every N frames, IoU-track in between (default 1); overlap (default): classify each frame while
the next one is detected (``Pipeline.stream``), one inference thread per stage. ``--reference-detector``: BlazeFace
with its pre/post-processing as before the cut (tests/helpers/blazeface_reference.py), for an A/B of that cut.
"""

import argparse
import sys
import time

from common import PASSES, REPO, load_clip, score

from fer_edge.runtime.pipeline import Pipeline

ap = argparse.ArgumentParser()
ap.add_argument("--every", type=int, default=1)
ap.add_argument("--threads", type=int, default=None, help="per stage (default: 1 overlapped, 2 sequential)")
ap.add_argument("--no-overlap", dest="overlap", action="store_false")
ap.add_argument("--model", default=None, help="a bundle folder (default: the bundled default model)")
ap.add_argument("--reference-detector", action="store_true", help="the detector code before the pre/post cut")
args = ap.parse_args()
threads = args.threads or (1 if args.overlap else 2)
frames, truth, clip = load_clip()
p = Pipeline.from_bundle(args.model, threads=threads, smooth=0.0, every=args.every)
if args.reference_detector:
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.blazeface_reference import ReferenceBlazeFace

    p.detector = ReferenceBlazeFace(threads=threads)
p.process(frames[0])  # warm-up
t = time.time()
for _ in range(PASSES):
    p.reset()
    items = ((i, f, i, None, None) for i, f in enumerate(frames))
    found = {i: [(e.face.box, e.label) for e in r.faces] for i, r in p.stream(items, overlap=args.overlap)}
fps = PASSES * len(frames) / (time.time() - t)
faces, hit, right = score(found, truth)
mode = ("overlapped" if args.overlap else "sequential") + (", reference detector" if args.reference_detector else "")
print(f"fer-edge ({mode}, {threads} thread(s) per stage, detect every {args.every}): {fps:.1f} FPS over "
      f"{PASSES} x {len(frames)} frames; found {hit}/{faces} face-frames (7 classes); "
      f"accuracy on found {100 * right / max(hit, 1):.1f}%; clip {clip}")
