"""Accuracy of ensembles of saved .keras models on FERPlus Valid and test (majority protocol, the official split as
training reads it). Every member alone, plain and flip-averaged; ensembles as `fer-edge train --teacher A,B,...`
distils from (the mean of the members' flip-averaged probabilities), chosen on Valid only (greedy forward selection;
the best subset by Valid accuracy and by Valid macro recall), then scored on test. Used for results/ensembles/
(its README restores the models and gives the whole command):

    python scripts/ensemble_accuracy.py compact-polish2=results/train/compact-polish2/model.keras \
        sepnet=/tmp/models/sepnet.keras ... --train-faces 2000 --out results/ensembles/ferplus.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fer_edge.data.types import FaceDataset

SPLITS = ("val", "test")


def member(spec: str) -> tuple[str, Path]:
    """NAME=PATH, or PATH (named by its file's stem)."""
    name, sep, path = spec.partition("=")
    return (name, Path(path)) if sep else (Path(spec).stem, Path(spec))


def views(path: Path, parts: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (plain, flip-averaged) probabilities over the dataset's classes, as distill.teacher_probabilities
    computes the flip-averaged ones (run record's input spec, evaluate.predict's flip, distill.by_name)."""
    from fer_edge.preprocess import to_model_input
    from fer_edge.run_record import input_spec_of
    from fer_edge.train.distill import by_name
    from fer_edge.train.evaluate import predict
    from fer_edge.train.surgery import class_names, load_model

    model = load_model(path)
    names = class_names(path, int(model.output_shape[-1]))
    spec = input_spec_of(path, int(model.input_shape[1]), int(model.input_shape[-1]))
    out = {}
    for split, ds in parts.items():
        x = to_model_input(ds.images, spec)
        out[split] = tuple(by_name(predict(model, x, flip=flip), names, ds.classes) for flip in (False, True))
    return out


def score(p: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Accuracy, macro recall and per-class recall (fer_edge.train.evaluate.metrics) of probabilities ``p``."""
    from fer_edge.train.evaluate import metrics

    m = metrics(y, p.argmax(1), classes)
    return {"accuracy": round(m["accuracy"], 4), "macro_recall": round(m["macro_recall"], 4),
            "recall": {c: round(v["recall"], 3) for c, v in m["per_class"].items() if v["support"]}}


def ensemble(names: tuple[str, ...], flip: dict, y: dict, classes: tuple[str, ...]) -> dict:
    """The Valid and test scores of the mean of ``names``' flip-averaged probabilities."""
    return {"members": list(names),
            **{s: score(np.mean([flip[n][s] for n in names], axis=0), y[s], classes) for s in SPLITS}}


def greedy(flip: dict, y: dict, classes: tuple[str, ...]) -> list[dict]:
    """Forward selection on Valid: start from the best member, add the one that most raises Valid accuracy (macro
    recall breaks ties) until every member is in; one entry per step."""
    chosen: tuple[str, ...] = ()
    steps = []
    while len(chosen) < len(flip):
        best = max((ensemble((*chosen, n), flip, y, classes) for n in flip if n not in chosen),
                   key=lambda e: (e["val"]["accuracy"], e["val"]["macro_recall"]))
        chosen = tuple(best["members"])
        steps.append(best)
    return steps


def on_train(names: list[str], members: dict[str, Path], flip: dict, ds: FaceDataset) -> dict:
    """The teacher ``names`` on training faces ``ds`` (distill.ensemble_probabilities): accuracy and mean top
    probability, beside its mean top probability on Valid (a teacher that memorized its training faces is surer
    there)."""
    from fer_edge.train.distill import ensemble_probabilities

    p = ensemble_probabilities(tuple(members[n] for n in names), ds)
    val = np.mean([flip[n]["val"] for n in names], axis=0)
    return {"members": names, "faces": len(p), **score(p, ds.local_labels(), ds.classes),
            "mean_top_probability": round(float(p.max(1).mean()), 3),
            "val_mean_top_probability": round(float(val.max(1).mean()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="NAME=PATH (or PATH) of each .keras member")
    ap.add_argument("--data", type=Path, default=None, help="FERPlus folder (default: $FER_EDGE_DATA or ../shared)")
    ap.add_argument("--out", type=Path, default=None, help="write the scores as JSON here (atomically)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many faces per split (a quick look)")
    ap.add_argument("--top", type=int, default=5, help="how many of the best subsets by Valid accuracy to keep")
    ap.add_argument("--train-faces", type=int, default=0,
                    help="also score the greedy choice on this many training faces (drawn, seed 0), through "
                         "distill.ensemble_probabilities as --teacher computes it")
    args = ap.parse_args()

    from fer_edge.atomic import write_json
    from fer_edge.errors import FerEdgeError
    from fer_edge.train.folds import load_stage_data, official_parts, resolve_data, subset

    try:
        members = dict(member(s) for s in args.models)
        if len(members) != len(args.models):
            raise FerEdgeError("two members share a name; name them NAME=PATH")
        for name, path in members.items():
            if not path.is_file():
                raise FerEdgeError(f"{name}: no such model file {path}")
        root = args.data or resolve_data("ferplus")
        train, val, test = official_parts(load_stage_data("ferplus", root, args.limit, 0), 0.1, 0)
        parts = {"val": val, "test": test}
        classes = test.classes
        y = {s: ds.local_labels() for s, ds in parts.items()}
        rows, flip = [], {}
        for name, path in members.items():
            v = views(path, parts)
            flip[name] = {s: v[s][1] for s in SPLITS}
            rows.append({"name": name, "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                         **{s: {t: score(v[s][i], y[s], classes) for i, t in enumerate(("plain", "flip"))}
                            for s in SPLITS}})
            print(f"{name}: flip-averaged accuracy Valid {rows[-1]['val']['flip']['accuracy']:.4f}, "
                  f"test {rows[-1]['test']['flip']['accuracy']:.4f}", file=sys.stderr)
        subsets = [ensemble(c, flip, y, classes) for k in range(1, len(flip) + 1)
                   for c in itertools.combinations(flip, k)]
        by_acc = sorted(subsets, key=lambda e: (-e["val"]["accuracy"], -e["val"]["macro_recall"]))
        steps = greedy(flip, y, classes)
        result = {
            "protocol": "FERPlus majority, official Valid and test; ensembles = mean of flip-averaged probabilities",
            "data": str(root), "faces": {s: len(y[s]) for s in SPLITS}, "classes": list(classes), "members": rows,
            "greedy": steps,
            "greedy_chosen": max(steps, key=lambda e: (e["val"]["accuracy"], e["val"]["macro_recall"])),
            "best_by_val_accuracy": by_acc[: args.top],
            "best_by_val_macro_recall": max(subsets, key=lambda e: (e["val"]["macro_recall"], e["val"]["accuracy"])),
            "all_members": subsets[-1],
        }
        if args.train_faces:
            result["teacher_on_train"] = on_train(result["greedy_chosen"]["members"], members, flip,
                                                  subset(train, args.train_faces, 0))
    except FerEdgeError as exc:
        sys.exit(f"error: {exc}")
    if args.out:
        write_json(args.out, result)
    print("| ensemble | Valid acc | Valid macro recall | test acc | test macro recall |\n|---|---|---|---|---|")
    for e in [*steps, *by_acc[: args.top], result["best_by_val_macro_recall"], result["all_members"]]:
        print(f"| {' + '.join(e['members'])} | {e['val']['accuracy']:.2%} | {e['val']['macro_recall']:.3f} "
              f"| {e['test']['accuracy']:.2%} | {e['test']['macro_recall']:.3f} |")


if __name__ == "__main__":
    main()
