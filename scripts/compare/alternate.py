"""Both sides of the comparison, alternately, N rounds each (this machine's speed drifts by 10-20% from minute to
minute, so one run of each is not a ratio): medians and the ratio per round.

    FER_COMPARE_PASSES=3 python scripts/compare/alternate.py --rounds 7 --fer-python /tmp/fervenv/bin/python \
        [--edge-args=--no-overlap] [--out results/compare/NAME.json]

Another clip: FER_COMPARE_CLIP=PATH.mp4 (labels in PATH.csv; see common.py). ``--out`` keeps every round's FPS and
both sides' last lines as JSON.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FPS = re.compile(r"([\d.]+) FPS")


def fps(python: str, *script: str) -> tuple[float, str]:
    out = subprocess.run([python, str(HERE / script[0]), *script[1:]], capture_output=True, text=True, cwd=HERE,
                         check=True).stdout
    line = out.strip().splitlines()[-1]
    return float(FPS.search(line).group(1)), line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fer-python", default="/tmp/fervenv/bin/python", help="a venv with fer installed")
    ap.add_argument("--edge-args", default="", help="options for fer_edge_pipeline.py, e.g. '--no-overlap'")
    ap.add_argument("--out", type=Path, default=None, help="write the rounds and medians here (JSON)")
    ap.add_argument("--versus", choices=("fer", "reference"), default="fer",
                    help="the other side: the fer package, or fer-edge with the detector code before the pre/post cut")
    args = ap.parse_args()
    other = (args.fer_python, "fer_package.py") if args.versus == "fer" else (
        sys.executable, "fer_edge_pipeline.py", "--reference-detector", *args.edge_args.split())
    ours, theirs = [], []
    for r in range(args.rounds):
        f, fline = fps(*other)
        e, eline = fps(sys.executable, "fer_edge_pipeline.py", *args.edge_args.split())
        theirs.append(f)
        ours.append(e)
        print(f"round {r + 1}: {args.versus} {f:.1f} FPS, fer-edge {e:.1f} FPS, ratio {e / f:.2f}", flush=True)
    print(fline)
    print(eline)
    ratios = [e / f for e, f in zip(ours, theirs, strict=True)]
    print(f"median over {args.rounds} rounds: {args.versus} {statistics.median(theirs):.1f} FPS, fer-edge "
          f"{statistics.median(ours):.1f} FPS; ratio median {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")
    if args.out:
        sys.path.insert(0, str(HERE.parents[1]))
        from fer_edge.atomic import write_json

        write_json(args.out, {
            "clip": Path(os.environ.get("FER_COMPARE_CLIP") or "demo").stem,
            "passes": int(os.environ.get("FER_COMPARE_PASSES", 1)),
            "rounds": args.rounds, "edge_args": args.edge_args, "versus": args.versus, f"{args.versus}_fps": theirs,
            "fer_edge_fps": ours, "ratios": [round(x, 3) for x in ratios],
            f"{args.versus}_fps_median": round(statistics.median(theirs), 1),
            "fer_edge_fps_median": round(statistics.median(ours), 1),
            "ratio_median": round(statistics.median(ratios), 3),
            f"{args.versus}_line": fline, "fer_edge_line": eline, "load_average": os.getloadavg(),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})


if __name__ == "__main__":
    main()
