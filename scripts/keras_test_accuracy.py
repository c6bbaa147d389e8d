"""Accuracy, macro recall and per-class recall of saved .keras models on the FERPlus test faces (majority protocol,
the official split as training reads it), plain and flip-averaged. Used for the sepnet figures in docs/model.md:

    python scripts/keras_test_accuracy.py results/train/sepnet/run/sepnet/ferplus/model.keras
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help=".keras files")
    ap.add_argument("--data", type=Path, default=None, help="FERPlus folder (default: $FER_EDGE_DATA or ../shared)")
    args = ap.parse_args()

    from fer_edge.errors import FerEdgeError
    from fer_edge.preprocess import to_model_input
    from fer_edge.run_record import input_spec_of
    from fer_edge.train.distill import by_name
    from fer_edge.train.evaluate import metrics, predict
    from fer_edge.train.folds import load_stage_data, official_parts, resolve_data
    from fer_edge.train.surgery import class_names, load_model

    root = args.data or resolve_data("ferplus")
    _, _, test = official_parts(load_stage_data("ferplus", root, None, 0), 0.1, 0)
    y = test.local_labels()
    for path in args.models:
        try:  # outputs matched to the test classes by name (the run record's), inputs as the model was trained
            model = load_model(path)
            names = class_names(path, int(model.output_shape[-1]))
            spec = input_spec_of(path, int(model.input_shape[1]), int(model.input_shape[-1]))
            x = to_model_input(test.images, spec)
            views = {tta: by_name(predict(model, x, flip=tta == "flip"), names, test.classes)
                     for tta in ("plain", "flip")}
        except FerEdgeError as exc:
            raise SystemExit(f"error: {path}: {exc}") from None
        for tta, p in views.items():
            m = metrics(y, p.argmax(1), test.classes)
            print(json.dumps({"model": str(path), "tta": tta, "faces": len(y), "accuracy": round(m["accuracy"], 4),
                              "macro_recall": round(m["macro_recall"], 3),
                              "recall": {c: round(v["recall"], 3) for c, v in m["per_class"].items()
                                         if v["support"]}}))


if __name__ == "__main__":
    main()
