"""Score a cross-validated stage's kept fold models (a run with `keep_fold_models: true`) both plain and with flip
test-time augmentation, so the two are compared on the very same models: per fold and mean ± std.

    python scripts/fold_scores.py runs/chain-study/ckplus-full-flip/compact/ckplus [--out scores.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer_edge.atomic import write_json
from fer_edge.data import load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import to_model_input
from fer_edge.train.evaluate import fold_stats, predict
from fer_edge.train.surgery import load_model


def score(stage: Path) -> dict:
    """Plain and flip accuracy of every kept fold model of ``stage`` on its own test faces."""
    run = json.loads((stage / "run.json").read_text())
    root = run.get("dataset", {}).get("root") or run.get("data", {}).get("root")
    if not root:
        raise FerEdgeError(f"{stage}/run.json names no dataset root")
    ds = load_dataset(root)
    folds = sorted((stage / "folds").glob("fold_*"))
    if not folds or not all((f / "model.keras").is_file() for f in folds):
        raise FerEdgeError(f"{stage}: no kept fold models (train with keep_fold_models: true)")
    rows = []
    for f in folds:
        r = json.loads((f / "result.json").read_text())
        test = ds.take(np.array(r["test_index"]))
        model = load_model(f / "model.keras")
        x, y = to_model_input(test.images, int(model.input_shape[1])), test.local_labels()
        row = {"fold": f.name, "test_subjects": r["test_subjects"],
               "plain": float(np.mean(predict(model, x).argmax(1) == y)),
               "flip": float(np.mean(predict(model, x, flip=True).argmax(1) == y))}
        if min(abs(row["plain"] - r["accuracy"]), abs(row["flip"] - r["accuracy"])) > 1e-6:
            raise FerEdgeError(f"{f}: recorded accuracy {r['accuracy']:.4f} is neither score here; the dataset at "
                               f"{root} is not the one the run used")
        rows.append(row)
    return {"stage": str(stage), "folds": rows,
            **{k: fold_stats([r[k] for r in rows]) for k in ("plain", "flip")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", type=Path, help="a stage folder of a cross-validated run (…/compact/ckplus)")
    ap.add_argument("--out", type=Path, help="write the scores as JSON here")
    a = ap.parse_args()
    try:
        res = score(a.stage)
    except (FerEdgeError, OSError, KeyError, ValueError) as e:
        sys.exit(f"fold_scores: {e}")
    for k in ("plain", "flip"):
        print(f"{k}: {100 * res[k]['mean']:.2f} ± {100 * res[k]['std']:.2f}% "
              f"({' '.join(f'{r[k]:.3f}' for r in res['folds'])})")
    if a.out:
        write_json(a.out, res)


if __name__ == "__main__":
    main()
