"""BlazeFace per-stage time, before and after the pre/post-processing cut, alternated in one process.

    nice -n -5 python scripts/compare/detector_stages.py --rounds 6 [--clip PATH.mp4] [--out results/compare/X.json]

Stages of one detect(): ``fill`` (letterbox + shrink + normalize into the input tensor), ``invoke`` (the
interpreter), ``read`` (outputs out of the interpreter) and ``decode`` (anchors, score filter, letterbox removed,
weighted NMS, faces). "before" is the code at commit 5c8dd71 (tests/helpers/blazeface_reference.py), "after" the
current detector. Each round runs both over every frame of the clip (the demo clip by default), in turn; the
medians are over all frames of all rounds. Every frame's faces are compared between the two as they run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from common import read_frames  # noqa: E402
from helpers.blazeface_reference import ReferenceBlazeFace  # noqa: E402

from fer_edge.atomic import write_json  # noqa: E402
from fer_edge.runtime.detectors.blazeface import BlazeFaceShort  # noqa: E402
from fer_edge.runtime.sample import CLIP, SAMPLE_DIR  # noqa: E402

STAGES = ("fill", "invoke", "read", "decode")


def one_pass(det: ReferenceBlazeFace | BlazeFaceShort, frames: list, times: dict[str, list[float]]) -> list:
    """Every frame through the detector's stages, each timed; the faces per frame."""
    clock = time.perf_counter
    out = []
    for frame in frames:
        t0 = clock()
        lb = det._fill(frame)
        t1 = clock()
        det.interp.invoke()
        t2 = clock()
        found = det._read()
        t3 = clock()
        faces = det._decode(found, lb)
        t4 = clock()
        for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[name].append(dt * 1e3)
        times["total"].append((t4 - t0) * 1e3)
        out.append(faces)
    return out


def same(a: list, b: list, tol: float = 1e-4) -> bool:
    """Same boxes, scores and keypoints (within ``tol``) on one frame."""
    return len(a) == len(b) and all(
        fa.box == fb.box and abs(fa.score - fb.score) <= tol
        and all(abs(p - q) <= tol for ka, kb in zip(fa.keypoints, fb.keypoints, strict=True)
                for p, q in zip(ka, kb, strict=True))
        for fa, fb in zip(a, b, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=SAMPLE_DIR / CLIP)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=None, help="write the medians as JSON here")
    args = ap.parse_args()
    frames = read_frames(args.clip)
    impls = {"before": ReferenceBlazeFace(threads=1), "after": BlazeFaceShort(threads=1)}
    times = {k: {s: [] for s in (*STAGES, "total")} for k in impls}
    for det in impls.values():  # warm-up
        one_pass(det, frames[:10], {s: [] for s in (*STAGES, "total")})
    differ = faces = 0
    for r in range(args.rounds):
        order = list(impls) if r % 2 == 0 else list(impls)[::-1]
        found = {name: one_pass(impls[name], frames, times[name]) for name in order}
        differ += sum(not same(a, b) for a, b in zip(found["before"], found["after"], strict=True))
        faces += sum(map(len, found["after"]))
    med = {k: {s: round(statistics.median(v), 4) for s, v in t.items()} for k, t in times.items()}
    for k, m in med.items():
        print(f"{k:>6}: " + ", ".join(f"{s} {v:.3f} ms" for s, v in m.items()))
    print(f"{len(frames)} frames x {args.rounds} rounds each, alternated; frames whose faces differ: {differ}; "
          f"faces found per round: {faces // args.rounds}")
    if args.out:
        write_json(args.out, {"clip": str(args.clip.resolve().relative_to(REPO) if args.clip.resolve().is_relative_to(
            REPO) else args.clip.name), "frames": len(frames), "rounds": args.rounds, "median_ms": med,
            "frames_differing": differ, "faces_per_round": faces // args.rounds,
            "command": "nice -n -5 python scripts/compare/detector_stages.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
