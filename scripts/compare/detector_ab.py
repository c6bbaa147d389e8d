"""End to end, the detector's pre/post cut A/B: one process, one pipeline, the detector swapped between the
current code and the code before the cut (tests/helpers/blazeface_reference.py) after every pass over the clip.

    FER_COMPARE_CLIP=PATH.mp4 nice -n -5 python scripts/compare/detector_ab.py --pairs 15 [--out X.json]

Alternating pass by pass inside one process keeps the machine's drift out of the ratio far better than separate
runs. Prints each side's median FPS and the median (and range) of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import CLIP, REPO, load_clip

sys.path.insert(0, str(REPO / "tests"))
from helpers.blazeface_reference import ReferenceBlazeFace

from fer_edge.atomic import write_json
from fer_edge.runtime.pipeline import Pipeline


def one_pass(p: Pipeline, frames: list) -> float:
    """FPS of one overlapped pass (detect a frame while the previous one is classified)."""
    p.reset()
    t = time.perf_counter()
    for _ in p.stream(((i, f, i, None, None) for i, f in enumerate(frames)), overlap=True):
        pass
    return len(frames) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    frames, _, clip = load_clip()
    p = Pipeline.from_bundle(threads=1, smooth=0.0)
    sides = {"after": p.detector, "before": ReferenceBlazeFace(threads=1)}
    fps: dict[str, list[float]] = {k: [] for k in sides}
    for det in sides.values():  # warm-up
        p.detector = det
        one_pass(p, frames[:20])
    for i in range(args.pairs):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            p.detector = sides[name]
            fps[name].append(one_pass(p, frames))
    ratios = [a / b for a, b in zip(fps["after"], fps["before"], strict=True)]
    med = {k: round(statistics.median(v), 1) for k, v in fps.items()}
    print(f"{clip}: before {med['before']} FPS, after {med['after']} FPS (medians of {args.pairs} passes each); "
          f"after/before median {statistics.median(ratios):.3f} (range {min(ratios):.2f}-{max(ratios):.2f})")
    if args.out:
        write_json(args.out, {"clip": Path(CLIP).stem if CLIP else "demo", "pairs": args.pairs, "fps": fps,
                              "fps_median": med, "ratio_median": round(statistics.median(ratios), 3),
                              "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                              "load_average": [round(x, 2) for x in os.getloadavg()],
                              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})


if __name__ == "__main__":
    main()
