"""A 640x480 test clip of 2-3 real faces from the JAFFE photos, with the labels of every face in every frame.

    python scripts/jaffe_clip.py ../shared/data/jaffe --out /work/notes/clips/jaffe3.mp4 [--segments 7] [--seed 0]

Three subjects (picked by ``--seed``) sit on a grey 640x480 canvas, two above and one below; each photo drifts a
few pixels and grows and shrinks slowly (under 2 px a frame). Every ``--hold`` frames (30) each subject shows
another of its photos, so the expressions change; each subject goes through the 7 expressions in its own order.
The third subject is away in every third segment (2 faces). Writes PATH.mp4 and PATH.csv (``frame,face,x,y,w,h,
file,label``: the face box is the part of the photo the data layer takes as the face, ``fer_edge.data.jaffe``).

JAFFE's licence forbids redistribution: the output must be outside the repository, and neither file is committed.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fer_edge.atomic import atomic_path, write_text  # noqa: E402
from fer_edge.data.jaffe import CODES, FALLBACK, parse_name  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30.0
CENTRES = ((120, 122), (520, 126), (320, 358))  # slot centres: two above, one below (photos never overlap)
SIDE, GROW, DRIFT = 198, 14, 8  # photo side (px) +- GROW, centre +- DRIFT
FIELDS = ("frame", "face", "x", "y", "w", "h", "file", "label")


class ClipError(Exception):
    """Bad input for the clip (one line, exit 2)."""


def photos_by_subject(folder: Path) -> dict[str, dict[str, list[str]]]:
    """subject -> emotion -> sorted file names, for every JAFFE-named file in ``folder``."""
    out: dict[str, dict[str, list[str]]] = {}
    for p in sorted(folder.iterdir()):
        parsed = parse_name(p.name)
        if parsed:
            out.setdefault(parsed[0], {}).setdefault(parsed[1], []).append(p.name)
    return out


def face_box(x: int, y: int, side: int) -> tuple[int, int, int, int]:
    """The face within a photo placed at (x, y) with ``side`` px: centre and size as the data layer assumes."""
    cx, cy = FALLBACK["fallback_centre"]
    fs = round(side * FALLBACK["fallback_scale"])
    return round(x + cx * side - fs / 2), round(y + cy * side - fs / 2), fs, fs


def placement(slot: int, frame: int) -> tuple[int, int, int]:
    """(x, y, side) of the photo in ``slot`` at ``frame``: a slow drift and a slow zoom, different per slot."""
    phase = 2.1 * slot
    side = round(SIDE + GROW * math.sin(2 * math.pi * frame / 150 + phase))
    cx = CENTRES[slot][0] + DRIFT * math.sin(2 * math.pi * frame / 97 + phase)
    cy = CENTRES[slot][1] + DRIFT * math.cos(2 * math.pi * frame / 113 + phase)
    return round(cx - side / 2), round(cy - side / 2), side


def plan(photos: dict[str, dict[str, list[str]]], segments: int, seed: int) -> list[list[str | None]]:
    """Per segment, the photo file in each of the 3 slots (None: nobody there)."""
    rng = np.random.default_rng(seed)
    subjects = [s for s in sorted(photos) if len(photos[s]) == len(CODES)]
    if len(subjects) < 3:
        raise ClipError(f"need 3 subjects with all {len(CODES)} expressions; found {len(subjects)}")
    chosen = [subjects[i] for i in rng.choice(len(subjects), 3, replace=False)]
    emotions = sorted(CODES.values())
    orders = [[emotions[i] for i in rng.permutation(len(emotions))] for _ in chosen]
    out = []
    for seg in range(segments):
        row: list[str | None] = []
        for slot, subject in enumerate(chosen):
            files = photos[subject][orders[slot][seg % len(emotions)]]
            row.append(None if slot == 2 and seg % 3 == 2 else files[int(rng.integers(len(files)))])
        out.append(row)
    return out


def build(folder: Path, out: Path, segments: int = 7, hold: int = 30, seed: int = 0) -> list[dict]:
    """Write ``out`` (mp4) and its .csv; returns the label rows."""
    out = out.resolve()
    if out.is_relative_to(REPO.resolve()):
        raise ClipError(f"{out} is inside the repository: JAFFE may not be redistributed, write it elsewhere")
    if out.suffix != ".mp4":
        raise ClipError(f"{out}: the clip must be an .mp4")
    if not folder.is_dir():
        raise ClipError(f"{folder}: not a folder of JAFFE photos")
    photos = photos_by_subject(folder)
    layout = plan(photos, segments, seed)
    cache: dict[str, np.ndarray] = {}
    background = np.linspace(110, 150, HEIGHT, dtype=np.float32)[:, None].repeat(WIDTH, 1).astype(np.uint8)
    rows: list[dict] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        if not writer.isOpened():
            raise ClipError("OpenCV cannot write mp4v video here")
        for i in range(segments * hold):
            seg = i // hold
            frame = background.copy()
            for slot, name in enumerate(layout[seg]):
                if name is None:
                    continue
                if name not in cache:
                    img = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
                    if img is None:
                        raise ClipError(f"{folder / name}: not a readable image")
                    cache[name] = img
                x, y, side = placement(slot, i)
                frame[y:y + side, x:x + side] = cv2.resize(cache[name], (side, side), interpolation=cv2.INTER_AREA)
                fx, fy, fw, fh = face_box(x, y, side)
                rows.append({"frame": i, "face": f"{seg}:{slot}", "x": fx, "y": fy, "w": fw, "h": fh, "file": name,
                             "label": parse_name(name)[1]})
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        writer.release()
    buf = io.StringIO()
    w = csv.DictWriter(buf, FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out.with_suffix(".csv"), buf.getvalue())
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jaffe", type=Path, help="the folder of JAFFE photos (KA.AN1.39.tiff ...)")
    ap.add_argument("--out", type=Path, required=True, help="PATH.mp4, outside the repository")
    ap.add_argument("--segments", type=int, default=7, help="expression changes (default 7: every expression once)")
    ap.add_argument("--hold", type=int, default=30, help="frames per segment")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.segments < 1 or args.hold < 1:
        print("error: --segments and --hold must be at least 1", file=sys.stderr)
        return 2
    try:
        rows = build(args.jaffe, args.out, args.segments, args.hold, args.seed)
    except ClipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = sorted({r["file"] for r in rows})
    print(f"{args.out}: {args.segments * args.hold} frames, {len(rows)} labelled face-frames, {len(files)} photos "
          f"({', '.join(sorted({f.split('.')[0] for f in files}))}); labels in {args.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
