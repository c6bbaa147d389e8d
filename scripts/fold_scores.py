"""Score a cross-validated stage's kept fold models (a run with `keep_fold_models: true`) both plain and with flip
test-time augmentation, so the two are compared on the very same models: per fold and mean ± std.

    python scripts/fold_scores.py runs/chain-study/ckplus-full-flip/compact/ckplus [--data DIR] [--out scores.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer_edge.atomic import write_json
from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import to_model_input
from fer_edge.run_record import input_spec_of
from fer_edge.train.average import stage_faces
from fer_edge.train.evaluate import fold_stats, predict
from fer_edge.train.surgery import load_model


def score(stage: Path, data: Path | None = None) -> dict:
    """Plain and flip accuracy of every kept fold model of ``stage`` on its own test faces, read as the run read
    them (``data``: the dataset's folder, when it has moved since)."""
    run = json.loads((stage / "run.json").read_text())
    if not isinstance(run, dict) or not isinstance(run.get("plan"), dict):
        raise FerEdgeError(f"{stage}/run.json is not the record of a stage")
    name = str(run.get("stage") or run["plan"].get("stage"))
    ds = stage_faces(run, {name: str(data)} if data else None)
    tta = run["plan"].get("tta", "none")  # the score each fold recorded
    folds = sorted((stage / "folds").glob("fold_*"))
    if not folds or not all((f / "model.keras").is_file() for f in folds):
        raise FerEdgeError(f"{stage}: no kept fold models (train with keep_fold_models: true)")
    rows = []
    for f in folds:
        r = json.loads((f / "result.json").read_text())
        index = np.asarray(r["test_index"], dtype=np.int64)
        if index.ndim != 1 or not len(index) or index.min() < 0 or index.max() >= len(ds):
            raise FerEdgeError(f"{f}/result.json: test_index does not fit the {len(ds)} faces of {name}")
        test = ds.take(index)
        model = load_model(f / "model.keras")
        if int(model.output_shape[-1]) != len(ds.classes):
            raise FerEdgeError(f"{f}/model.keras has {model.output_shape[-1]} outputs, "
                               f"{name} has {len(ds.classes)} classes")
        spec = input_spec_of(f / "model.keras", int(model.input_shape[1]), int(model.input_shape[-1]))
        x, y = to_model_input(test.images, spec), test.local_labels()
        row = {"fold": f.name, "test_subjects": r["test_subjects"],
               "plain": float(np.mean(predict(model, x).argmax(1) == y)),
               "flip": float(np.mean(predict(model, x, flip=True).argmax(1) == y))}
        mine = row["flip" if tta == "flip" else "plain"]
        if abs(mine - float(r["accuracy"])) > 1e-6:
            raise FerEdgeError(f"{f}: recorded accuracy {r['accuracy']:.4f} ({tta} TTA) but {mine:.4f} here: "
                               "the model or the faces differ from the run's")
        rows.append(row)
    return {"stage": str(stage), "tta": tta, "folds": rows,
            **{k: fold_stats([r[k] for r in rows]) for k in ("plain", "flip")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", type=Path, help="a stage folder of a cross-validated run (…/compact/ckplus)")
    ap.add_argument("--data", type=Path, help="the dataset's folder, when it is no longer where the run read it")
    ap.add_argument("--out", type=Path, help="write the scores as JSON here")
    a = ap.parse_args()
    try:
        res = score(a.stage, a.data)
        for k in ("plain", "flip"):
            print(f"{k}: {100 * res[k]['mean']:.2f} ± {100 * res[k]['std']:.2f}% "
                  f"({' '.join(f'{r[k]:.3f}' for r in res['folds'])})")
        if a.out:
            write_json(a.out, res)
    except (FerEdgeError, OSError, KeyError, ValueError, TypeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
