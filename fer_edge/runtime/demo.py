"""``fer-edge demo``: the bundled model on the bundled sample clip (FERPlus test faces, 2-3 per frame), writing
the annotated video, JSON lines and a summary with the accuracy against the faces' FERPlus majority labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import DEFAULT_CROP
from fer_edge.runtime.geometry import iou
from fer_edge.runtime.pipeline import Pipeline, _default_bundle
from fer_edge.runtime.run import run
from fer_edge.runtime.sample import CLIP, FACES_CSV, SAMPLE_DIR, SampleFace, read_faces
from fer_edge.runtime.sources import Frame
from fer_edge.runtime.stats import Summary
from fer_edge.runtime.types import Face, FrameResult


@dataclass
class DemoResult:
    out: Path
    summary: Summary
    accuracy: dict[str, Any] = field(default_factory=dict)


def known_box(tile: tuple[int, int, int, int], margin: float = DEFAULT_CROP.margin) -> tuple[int, int, int, int]:
    """The face box whose pipeline crop (square, ``margin`` per side: the bundle's crop rule) is exactly the
    sample's face tile."""
    x, y, w, h = tile
    side = round(w / (1 + 2 * margin))
    return x + (w - side) // 2, y + (h - side) // 2, side, side


class _Scorer:
    """Per scene (its first frame): detected faces matched to the known tiles, and the label of each."""

    def __init__(self, faces: list[SampleFace], pipe: Pipeline) -> None:
        self.first = {}
        for f in faces:
            self.first.setdefault(f.first_frame, []).append(f)
        self.pipe = pipe
        self.total = len(faces)
        self.found = self.correct_found = self.correct_known = 0

    def __call__(self, frame: Frame, result: FrameResult) -> None:
        truth = self.first.get(frame.index)
        if not truth:
            return
        for t in truth:
            best = max(result.faces, key=lambda e: iou(e.face.box, t.box), default=None)
            if best is not None and iou(best.face.box, t.box) > 0.3:
                self.found += 1
                self.correct_found += best.label == t.label
        crops = self.pipe.crops(frame.image, [Face(known_box(t.box, self.pipe.crop.margin), 1.0) for t in truth])
        probs = self.pipe.classify(crops, bgr=True)
        self.correct_known += sum(self.pipe.classes[int(p.argmax())] == t.label
                                  for p, t in zip(probs, truth, strict=True))

    def report(self) -> dict[str, Any]:
        return {"faces": self.total, "detected": self.found,
                "detection_rate": round(self.found / max(1, self.total), 4),
                "accuracy_detected": round(self.correct_found / max(1, self.found), 4),
                "accuracy_known_boxes": round(self.correct_known / max(1, self.total), 4)}


def run_demo(out_dir: str | Path = "fer-edge-demo", bundle: str | Path | None = None, backend: str = "auto",
             threads: int | None = None, detector: str = "auto", sample: Path = SAMPLE_DIR,
             echo: Callable[[str], None] | None = None) -> DemoResult:
    """Run the demo; ``detector="known"`` skips detection and uses the sample's face boxes."""
    clip, csv_path = Path(sample) / CLIP, Path(sample) / FACES_CSV
    if not clip.is_file() or not csv_path.is_file():
        raise FerEdgeError(f"the demo sample is missing ({clip}); rebuild it with python -m fer_edge.runtime.sample")
    model = bundle if bundle is not None else _default_bundle()
    faces = read_faces(Path(sample))
    known = detector == "known"
    pipe = Pipeline.from_bundle(model, backend=backend, threads=threads, detector=None if known else detector,
                                min_face=24, smooth=0.0, every=1)
    boxes: dict[int, list[Face]] = {}
    for f in faces:
        for i in range(f.first_frame, f.last_frame + 1):
            boxes.setdefault(i, []).append(Face(known_box(f.box, pipe.crop.margin), 1.0))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scorer = _Scorer(faces, pipe)
    summary = run(str(clip), pipeline=pipe, save=out / "annotated.mp4", json_out=out / "results.jsonl",
                  known_faces=(lambda i, _name: boxes.get(i, [])) if known else None, on_result=scorer)
    acc = scorer.report()
    summary.extra["demo"] = acc
    write_json(out / "summary.json", summary.to_dict())
    if echo is not None:
        echo(summary.format())
        how = "known boxes (no detector)" if known else f"detector {summary.detector}"
        echo(f"sample: {acc['faces']} FERPlus test faces; {how} found {acc['detected']} "
             f"({100 * acc['detection_rate']:.1f}%); accuracy vs FERPlus majority labels: "
             f"{100 * acc['accuracy_detected']:.1f}% on found faces, {100 * acc['accuracy_known_boxes']:.1f}% "
             f"on the known face boxes")
        echo(f"wrote {out / 'annotated.mp4'}, {out / 'results.jsonl'}, {out / 'summary.json'}")
    return DemoResult(out, summary, acc)


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "summary.json").read_text())
