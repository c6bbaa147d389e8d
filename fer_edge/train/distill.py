"""Knowledge distillation: a stronger model (a larger input, a bigger backbone), or an ensemble of several, teaches a
stage. Its predictions on the stage's training faces, each averaged with its mirror image's (and over the ensemble's
members), are mixed into the training targets, so a small edge model learns the teacher's soft view of every face.
Static: computed once per stage, before training, on each worker alike (no collective ops, so it runs the same under
any tf.distribute strategy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.errors import FerEdgeError


def teacher_probabilities(path: str | Path, ds: FaceDataset) -> np.ndarray:
    """(N, K) teacher probabilities over ``ds.classes`` for every face of ``ds`` (flip-averaged, renormalized
    over the stage's classes). The teacher must know every class of the stage, by name."""
    from fer_edge.preprocess import to_model_input
    from fer_edge.run_record import input_spec_of
    from fer_edge.train.evaluate import predict
    from fer_edge.train.surgery import class_names, load_model

    model = load_model(path)
    names = class_names(path, int(model.output_shape[-1]))
    missing = [c for c in ds.classes if c not in names]
    if missing:
        raise FerEdgeError(f"--teacher {path} has no {', '.join(missing)} output (it knows {', '.join(names)})")
    x = to_model_input(ds.images, input_spec_of(path, int(model.input_shape[1]), int(model.input_shape[-1])))
    return by_name(predict(model, x, flip=True), names, ds.classes).astype(np.float32)


def by_name(p: np.ndarray, names: list[str] | tuple[str, ...], classes: tuple[str, ...]) -> np.ndarray:
    """Probabilities ``p`` over a model's outputs ``names`` as probabilities over ``classes``: their columns, by
    name and in that order, renormalized to sum to 1 (classes the model knows beyond them are dropped)."""
    missing = [c for c in classes if c not in names]
    if missing:
        raise FerEdgeError(f"the model has no {', '.join(missing)} output (it knows {', '.join(names)})")
    p = p[:, [list(names).index(c) for c in classes]]
    return p / np.clip(p.sum(axis=1, keepdims=True), 1e-8, None)


def teacher_paths(value: str) -> tuple[str, ...]:
    """The teacher models named by ``--teacher``: one path, or several separated by commas (an ensemble)."""
    return tuple(p.strip() for p in value.split(",") if p.strip())


def ensemble_probabilities(paths: tuple[str | Path, ...], ds: FaceDataset) -> np.ndarray:
    """The mean of every teacher's :func:`teacher_probabilities` (an ensemble's soft view of each face)."""
    from tqdm.auto import tqdm

    if not paths:
        raise FerEdgeError("--teacher: no model path given")
    total = np.zeros((len(ds), len(ds.classes)), np.float64)
    for p in tqdm(paths, desc=f"teacher predictions on {len(ds)} faces", unit="model", dynamic_ncols=True, delay=1):
        total += teacher_probabilities(p, ds)
    return (total / len(paths)).astype(np.float32)


def distilled_targets(y: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * y + weight * teacher``: the labels (or vote distributions) with the teacher's view."""
    if not 0 <= weight <= 1:
        raise FerEdgeError(f"--teacher-weight must be in [0, 1], got {weight}")
    return ((1 - weight) * y + weight * teacher).astype(np.float32)
