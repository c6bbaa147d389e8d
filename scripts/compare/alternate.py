"""Both sides of the comparison, alternately, N rounds each (this machine's speed drifts by 10-20% from minute to
minute, so one run of each is not a ratio): medians and the ratio per round.

    FER_COMPARE_PASSES=3 python scripts/compare/alternate.py --rounds 7 --fer-python /tmp/fervenv/bin/python \
        [--edge-args=--no-overlap]
"""

import argparse
import re
import statistics
import subprocess
import sys
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
    args = ap.parse_args()
    ours, theirs = [], []
    for r in range(args.rounds):
        f, fline = fps(args.fer_python, "fer_package.py")
        e, eline = fps(sys.executable, "fer_edge_pipeline.py", *args.edge_args.split())
        theirs.append(f)
        ours.append(e)
        print(f"round {r + 1}: fer {f:.1f} FPS, fer-edge {e:.1f} FPS, ratio {e / f:.2f}", flush=True)
    print(fline)
    print(eline)
    ratios = [e / f for e, f in zip(ours, theirs, strict=True)]
    print(f"median over {args.rounds} rounds: fer {statistics.median(theirs):.1f} FPS, fer-edge "
          f"{statistics.median(ours):.1f} FPS; ratio median {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
