"""Averaging a finished stage's kept epochs after the run (`fer-edge average`): stochastic weight averaging over
several counts, chosen on validation.

A stage trained with ``--swa N`` keeps its last N epochs' weights in ``ckpt/swa/``. For each count asked for, the
mean of that many newest epochs gets its BatchNorm statistics recomputed on the stage's training faces
(``fer_edge.train.trainer.average_weights``, the code ``--swa`` uses) and is scored on the stage's validation faces.
The variant best on validation, the stage's own model included, is written to the output folder with the stage's
run.json, so it converts (``fer-edge convert``) and trains on (``--weights``) like any stage's model. Test faces
are scored for every variant and reported, never chosen on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge import atomic, run_record
from fer_edge.data.types import FaceDataset
from fer_edge.errors import DataError, FerEdgeError
from fer_edge.preprocess import to_model_input
from fer_edge.train import reports
from fer_edge.train.evaluate import input_size, metrics, predict
from fer_edge.train.folds import load_stage_data, official_parts, resolve_data, subject_holdout
from fer_edge.train.trainer import average_weights, kept_epochs

STAGE_MODEL = "model.keras"
AVERAGE_RECORD = "average.json"


@dataclass(frozen=True)
class AverageResult:
    """What ``average_stage`` wrote and chose: ``kept`` is ``model`` (the stage's own) or ``last_N``."""

    out: Path
    kept: str
    variants: dict[str, dict]
    epochs_kept: int


def average_stage(stage_dir: str | Path, counts: Sequence[int], out: str | Path | None = None,
                  data: Mapping[str, str] | None = None, dataset: FaceDataset | None = None) -> AverageResult:
    """Average the newest ``counts`` kept epochs of the finished stage in ``stage_dir`` and write the variant best
    on validation into ``out`` (default ``stage_dir/average``): model.keras, run.json, average.json, written as one
    folder (an earlier average there is replaced whole; a folder holding anything else is refused).
    ``data`` maps a stage name to its dataset folder (else the folder the run read, else the data roots);
    ``dataset`` gives the stage's faces directly (tests, notebooks)."""
    from fer_edge.train.surgery import load_model

    stage = Path(stage_dir)
    run = _finished_run(stage)
    files = kept_epochs(stage)
    if not files:
        raise FerEdgeError(f"{stage}: no kept epoch weights in ckpt/swa/ (train the stage with --swa N to keep "
                           "its last N epochs)")
    counts = sorted(set(int(n) for n in counts))
    if not counts or counts[0] < 1 or counts[-1] > len(files):
        raise FerEdgeError(f"{stage}: --epochs {','.join(map(str, counts)) or '(none)'}: each count must be "
                           f"1..{len(files)} (the stage kept {len(files)} epochs)")
    dest = Path(out) if out is not None else stage / "average"
    if dest.resolve() == stage.resolve():
        raise FerEdgeError(f"--out {dest}: choose a folder other than the stage's own")
    _check_out(dest)
    train, val, test = _stage_parts(run, data, dataset)

    model = load_model(stage / STAGE_MODEL)
    size = input_size(model)
    x_train = to_model_input(train.images, size)
    variants = {"model": _scores(model, val, test)}
    best_name, best_weights = "model", None
    for n in counts:
        avg = average_weights(model, files[-n:], x_train)
        variants[f"last_{n}"] = {"epochs": n, **_scores(avg, val, test)}
        print(f"last {n} epochs averaged: val {variants[f'last_{n}']['val_accuracy']:.4f}", flush=True)
        if variants[f"last_{n}"]["val_accuracy"] > variants[best_name]["val_accuracy"]:
            best_name, best_weights = f"last_{n}", [np.asarray(w) for w in avg.get_weights()]
    model = load_model(stage / STAGE_MODEL)  # the stage's own, or given the chosen average's weights
    if best_weights is not None:
        model.set_weights(best_weights)

    record = _run_record(run, variants[best_name], dest)
    run_record.from_dict(record, str(dest / "run.json"))  # what conversion will read: checked before writing
    with atomic.atomic_dir(dest) as tmp:  # the three files appear together, replacing an earlier average whole
        model.save(tmp / STAGE_MODEL)
        atomic.write_json(tmp / AVERAGE_RECORD, {
            "stage": str(stage), "epochs_kept": [f.name for f in files], "counts": counts, "variants": variants,
            "kept": best_name, "chosen_on": "validation accuracy (ties keep the stage's own model)"})
        atomic.write_json(tmp / "run.json", record)
    return AverageResult(dest, best_name, variants, len(files))


def _check_out(dest: Path) -> None:
    """The output folder is new, empty or an earlier ``fer-edge average`` output (average.json), which is replaced
    whole; never a training stage's folder or any other folder with files in it."""
    if dest.is_file():
        raise FerEdgeError(f"--out {dest}: is a file; give a folder")
    if not dest.is_dir() or (dest / AVERAGE_RECORD).is_file() or not any(dest.iterdir()):
        return
    if (dest / "run.json").is_file():
        raise FerEdgeError(f"--out {dest}: holds a training stage (run.json, no {AVERAGE_RECORD}), which would be "
                           "replaced; choose a new folder")
    raise FerEdgeError(f"--out {dest}: already holds files that are not an earlier fer-edge average output (no "
                       f"{AVERAGE_RECORD}); choose a new or empty folder")


def _finished_run(stage: Path) -> dict:
    f = stage / "run.json"
    if not stage.is_dir():
        raise FerEdgeError(f"{stage}: no such stage folder (e.g. runs/compact/compact/ferplus)")
    if not f.is_file() or not (stage / STAGE_MODEL).is_file():
        raise FerEdgeError(f"{stage}: not a finished training stage (no run.json and model.keras)")
    try:
        run = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise FerEdgeError(f"{f}: unreadable ({exc})") from None
    if not isinstance(run, dict) or run.get("status") != "finished" or not isinstance(run.get("plan"), dict):
        raise FerEdgeError(f"{f}: not the record of a finished stage")
    return run


def _stage_parts(run: dict, data: Mapping[str, str] | None,
                 dataset: FaceDataset | None) -> tuple[FaceDataset, FaceDataset, FaceDataset | None]:
    """The stage's (train, val, test) faces cut as the run cut them; test is None for a cross-validated stage
    (whose final model trained on every subject but a held-out validation part)."""
    plan = run["plan"]
    seed = int(plan.get("config", {}).get("seed", 0))
    ds = stage_faces(run, data, dataset)
    fraction = float(plan.get("val_fraction", 0.1))
    if plan.get("protocol") == "official":
        return official_parts(ds, fraction, seed)
    tr, va = subject_holdout(ds, np.arange(len(ds)), fraction, seed)
    return ds.take(tr), ds.take(va), None


def stage_faces(run: dict, data: Mapping[str, str] | None = None, dataset: FaceDataset | None = None
                ) -> FaceDataset:
    """The labelled faces a stage (its ``run.json`` as ``run``) trained on, read as it read them (its limit and
    seed; ``data`` {stage: path} overrides the recorded root); a DataError when they are not the same faces
    (data sha256) or classes. The indices a fold records (``test_index``) point into these."""
    plan = run["plan"]
    name = str(run.get("stage") or plan.get("stage"))
    chain = (run.get("config") or {}).get("chain") or {}
    if dataset is None:
        recorded = (run.get("data") or {}).get("root")
        if data and name in data:
            path = resolve_data(name, data)
        elif recorded and Path(recorded).exists():
            path = Path(recorded)
        else:
            path = resolve_data(name, chain.get("data") or {})
        dataset = load_stage_data(name, path, plan.get("limit"), int((chain.get("stage") or {}).get("seed", 0)))
    ds = dataset.labelled()
    if plan.get("data_sha256") and reports.fingerprint(ds)["sha256"] != plan["data_sha256"]:
        raise DataError(f"the {name} faces read now differ from those the stage trained on (data sha256); "
                        f"pass --data {name}=PATH of the same dataset")
    if tuple(ds.classes) != tuple(run.get("classes") or ds.classes):
        raise DataError(f"{name}: classes {list(ds.classes)} differ from the stage's {run['classes']}")
    return ds


def _scores(model: object, val: FaceDataset, test: FaceDataset | None) -> dict:
    size = input_size(model)
    pv = predict(model, to_model_input(val.images, size))
    out: dict = {"val_accuracy": float(np.mean(pv.argmax(1) == val.local_labels()))}
    if test is not None:
        y = test.local_labels()
        m = metrics(y, predict(model, to_model_input(test.images, size)).argmax(1), test.classes)
        out.update(test_accuracy=m["accuracy"], test_macro_f1=m["macro_f1"], test_macro_recall=m["macro_recall"])
    return out


def _run_record(run: dict, scores: dict, dest: Path) -> dict:
    """The stage's run.json for the kept model: its validation (and, on an official split, test) numbers."""
    record = json.loads(json.dumps(run))
    summary = record.setdefault("summary", {})
    summary.update(best_val_accuracy=scores["val_accuracy"], model=str(dest / STAGE_MODEL))
    if "test_accuracy" in scores and run.get("protocol", run["plan"].get("protocol")) == "official":
        summary.update(accuracy=scores["test_accuracy"], pooled_accuracy=scores["test_accuracy"],
                       macro_f1=scores["test_macro_f1"], macro_recall=scores["test_macro_recall"])
    return record
