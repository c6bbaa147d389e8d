"""Scoring a classifier on held-out faces: predictions, confusion matrix, per-class precision/recall/F1,
fold statistics, and FGSM accuracy (what adversarial training is meant to move)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.preprocess import to_model_input


@dataclass(frozen=True)
class Evaluation:
    """Predictions on one test set. Labels are indices into ``classes`` (the model's head)."""

    classes: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray
    fgsm_accuracy: float | None = None
    fgsm_epsilon: float | None = None

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.y_true == self.y_pred)) if len(self.y_true) else float("nan")


def input_size(model: object) -> int:
    """The square input size a fer-edge classifier takes."""
    return int(model.input_shape[1])


def predict(model: object, x: np.ndarray, batch: int = 256, flip: bool = False) -> np.ndarray:
    """Softmax outputs for float inputs (N, S, S, 1) in [0, 1], batched, inference mode; ``flip`` averages each
    face's with its mirror image's (test-time augmentation, as ``fer-edge run --flip-tta``)."""
    if len(x) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    if flip:
        return (predict(model, x, batch) + predict(model, x[:, :, ::-1], batch)) / 2
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])


def evaluate(model: object, ds: FaceDataset, fgsm_epsilon: float | None = None, flip: bool = False) -> Evaluation:
    """Predict every labelled face of ``ds`` (whose classes must be the model's head, in order); ``flip``: see
    :func:`predict`."""
    ds = ds.labelled()
    x = to_model_input(ds.images, input_size(model))
    y = ds.local_labels()
    probs = predict(model, x, flip=flip)
    robust = None
    if fgsm_epsilon:
        from fer_edge.train.adversarial import fgsm_accuracy

        robust = fgsm_accuracy(model, x, y, fgsm_epsilon)
    return Evaluation(ds.classes, y, probs.argmax(axis=1), probs, robust, fgsm_epsilon)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and their macro averages (over classes with support)."""
    k = len(classes)
    cm = confusion(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i, c in enumerate(classes)}
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "macro_precision": float(precision[present].mean()) if present.any() else float("nan"),
        "macro_recall": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def fold_stats(accuracies: list[float]) -> dict:
    """Mean and (population) standard deviation of per-fold accuracies."""
    a = np.asarray(accuracies, dtype=np.float64)
    return {"folds": len(a), "fold_accuracies": [float(v) for v in a],
            "mean": float(a.mean()) if len(a) else float("nan"), "std": float(a.std()) if len(a) else float("nan")}
