"""Builds the demo sample (fer_edge/assets/sample/) from FERPlus TEST faces: a short 640x480 clip with 2-3
upscaled faces per scene on a neutral background, and faces.csv with each face's box and FERPlus majority label.

    python -m fer_edge.runtime.sample /path/to/ferplus [--out fer_edge/assets/sample]

Development tool (needs the FERPlus folder); the demo itself only reads what this writes.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import atomic_path, write_text
from fer_edge.labels import EMOTIONS

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "assets" / "sample"
CLIP, FACES_CSV = "sample.mp4", "faces.csv"
WIDTH, HEIGHT, FPS, HOLD = 640, 480, 6.0, 3  # each scene is held for HOLD frames
CSV_FIELDS = ("scene", "first_frame", "last_frame", "x", "y", "w", "h", "file", "label")


@dataclass(frozen=True)
class SampleFace:
    scene: int
    first_frame: int
    last_frame: int
    box: tuple[int, int, int, int]
    file: str
    label: str


def majority_labels(label_csv: Path) -> dict[str, str]:
    """FERPlus majority protocol: file -> the single most-voted emotion (ties, unknown and not-a-face dropped)."""
    out = {}
    with label_csv.open(newline="") as fh:
        for row in csv.reader(fh):
            if len(row) != 12:
                continue
            votes = np.array([int(v) for v in row[2:]])
            top = votes.max()
            if top > 0 and (votes == top).sum() == 1 and votes.argmax() < len(EMOTIONS):
                out[row[0].strip()] = EMOTIONS[int(votes.argmax())]
    return out


def build(ferplus: Path, out: Path = SAMPLE_DIR, faces: int = 192, seed: int = 0) -> list[SampleFace]:
    """Write ``out``/sample.mp4 and ``out``/faces.csv from ``faces`` random FERPlus TEST faces."""
    test = Path(ferplus) / "FER2013Test"
    labels = majority_labels(test / "label.csv")
    rng = np.random.default_rng(seed)
    names = sorted(n for n in labels if (test / n).is_file())
    picked = [names[i] for i in rng.choice(len(names), size=min(faces, len(names)), replace=False)]
    counts, left = [], len(picked)
    while left > 0:  # scenes of 3, 3, 2 faces, ...
        k = min(left, 2 if len(counts) % 3 == 2 else 3)
        counts.append(k)
        left -= k
    records: list[SampleFace] = []
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CLIP) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        i = 0
        for scene, k in enumerate(counts):
            frame = _background(rng)
            boxes = _layout(k, rng)
            for box, name in zip(boxes, picked[i:i + k], strict=True):
                face = cv2.imread(str(test / name), cv2.IMREAD_GRAYSCALE)
                x, y, w, h = box
                frame[y:y + h, x:x + w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
                records.append(SampleFace(scene, scene * HOLD, scene * HOLD + HOLD - 1, box, name, labels[name]))
            i += k
            for _ in range(HOLD):
                writer.write(frame)
        writer.release()
    rows = [",".join(CSV_FIELDS)] + [",".join(str(v) for v in (r.scene, r.first_frame, r.last_frame, *r.box,
                                                                  r.file, r.label)) for r in records]
    write_text(out / FACES_CSV, "\n".join(rows) + "\n")
    for name in (CLIP, FACES_CSV):
        (out / name).chmod(0o644)
    return records


def _background(rng: np.random.Generator) -> np.ndarray:
    """A neutral grey with a soft vertical gradient."""
    base = int(rng.integers(105, 150))
    col = np.linspace(base - 15, base + 15, HEIGHT, dtype=np.float32)[:, None, None]
    return np.broadcast_to(col, (HEIGHT, WIDTH, 3)).astype(np.uint8).copy()


def _layout(k: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """``k`` non-overlapping square boxes, one per column slot, sizes 136-176 px, jittered."""
    slot = WIDTH // k
    boxes = []
    for j in range(k):
        side = int(rng.integers(136, 177))
        cx = slot * j + slot // 2 + int(rng.integers(-max(0, (slot - side) // 2 - 8), max(1, (slot - side) // 2 - 8)))
        cy = HEIGHT // 2 + int(rng.integers(-120, 121))
        x = int(np.clip(cx - side // 2, 0, WIDTH - side))
        y = int(np.clip(cy - side // 2, 0, HEIGHT - side))
        boxes.append((x, y, side, side))
    return boxes


def read_faces(sample: Path = SAMPLE_DIR) -> list[SampleFace]:
    """The sample's faces.csv."""
    with (Path(sample) / FACES_CSV).open(newline="") as fh:
        return [SampleFace(int(r["scene"]), int(r["first_frame"]), int(r["last_frame"]),
                           (int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])), r["file"], r["label"])
                for r in csv.DictReader(fh)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ferplus", type=Path, help="FERPlus folder holding FER2013Test/")
    ap.add_argument("--out", type=Path, default=SAMPLE_DIR)
    ap.add_argument("--faces", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    recs = build(args.ferplus, args.out, args.faces, args.seed)
    size = (args.out / CLIP).stat().st_size
    print(f"{args.out / CLIP}: {len(recs)} faces in {recs[-1].scene + 1} scenes, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
