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

    import numpy as np

    from fer_edge.preprocess import to_model_input
    from fer_edge.train.evaluate import predict
    from fer_edge.train.folds import load_stage_data, official_parts, resolve_data
    from fer_edge.train.surgery import load_model

    root = args.data or resolve_data("ferplus")
    _, _, test = official_parts(load_stage_data("ferplus", root, None, 0), 0.1, 0)
    y = test.local_labels()
    for path in args.models:
        model = load_model(path)
        x = to_model_input(test.images, int(model.input_shape[1]))
        for name, p in (("plain", predict(model, x)), ("flip", predict(model, x, flip=True))):
            pred = p.argmax(1)
            recall = {c: round(float((pred[y == k] == k).mean()), 3) for k, c in enumerate(test.classes)
                      if (y == k).any()}
            print(json.dumps({"model": str(path), "tta": name, "faces": len(y),
                              "accuracy": round(float((pred == y).mean()), 4),
                              "macro_recall": round(float(np.mean(list(recall.values()))), 3), "recall": recall}))


if __name__ == "__main__":
    main()
