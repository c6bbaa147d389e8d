"""Validation of every artifact through the runtime's own Classifier (so runtime parity holds by construction):
accuracy on held-out faces, its delta to the Keras fp32 model, top-1 agreement with it, and a status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_edge.bundle import Artifact, Bundle, InputSpec
from fer_edge.convert.formats import ExportFormat

BATCH = 256


@dataclass(frozen=True)
class Score:
    accuracy: float          # fraction of labelled faces right
    agreement: float         # fraction of faces with the same top-1 class as the Keras model
    delta: float             # accuracy minus the Keras accuracy, in points
    seconds: float           # time to run the evaluation faces


def keras_predict(model: object, spec: InputSpec, faces: np.ndarray) -> np.ndarray:
    """Reference probabilities of the Keras model on ``faces``, preprocessed exactly as the manifest says."""
    out = [np.asarray(model(spec.prepare(faces[i : i + BATCH]), training=False))
           for i in range(0, len(faces), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def runtime_predict(bundle: Bundle, art: Artifact, backend: str, faces: np.ndarray,
                    threads: int | None = None) -> tuple[np.ndarray, float]:
    """Probabilities of ``art`` from ``fer_edge.runtime.Classifier`` on ``backend`` and the seconds it took."""
    import time

    from fer_edge.runtime.classifier import Classifier

    clf = Classifier(bundle, backend=backend, threads=threads, precision=art.precision, format=art.format)
    t0 = time.perf_counter()
    out = np.concatenate([clf.predict(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)])
    return out, time.perf_counter() - t0


def score(probs: np.ndarray, ref: np.ndarray, labels: np.ndarray, seconds: float = 0.0) -> Score:
    pred, ref_pred = probs.argmax(1), ref.argmax(1)
    acc, ref_acc = float(np.mean(pred == labels)), float(np.mean(ref_pred == labels))
    return Score(acc, float(np.mean(pred == ref_pred)), 100.0 * (acc - ref_acc), seconds)


def judge(entry: ExportFormat, s: Score, limit: float, limit_name: str) -> tuple[str, str]:
    """(status, reason): degraded when agreement is below the format's floor or the drop exceeds ``limit``."""
    if entry.min_agreement is not None and s.agreement < entry.min_agreement:
        floor = 100 * entry.min_agreement
        return "degraded", f"top-1 agreement with Keras {100 * s.agreement:.2f}% is below {floor:g}%"
    if -s.delta > limit + 1e-9:
        return "degraded", f"accuracy drop {-s.delta:.2f} points exceeds {limit_name} {limit:g}"
    return "passed", ""
