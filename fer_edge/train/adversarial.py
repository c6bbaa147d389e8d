"""Adversarial regularization: FGSM neighbours made inside each training step (loss = clean + weight * adversarial),
and the FGSM accuracy that measures its effect."""

from __future__ import annotations

import numpy as np

from fer_edge.errors import FerEdgeError

DEFAULT_EPSILON = 0.02  # in [0, 1] input units, about 5 gray levels


def check(weight: float, epsilon: float) -> None:
    """One clear error for a negative weight or an epsilon outside (0, 1)."""
    if weight < 0:
        raise FerEdgeError(f"--adversarial must be >= 0, got {weight}")
    if not 0 < epsilon < 1:
        raise FerEdgeError(f"--adv-epsilon must be in (0, 1) (input range is [0, 1]), got {epsilon}")


def fgsm(model: object, x: object, y: object, epsilon: float) -> object:
    """Fast-gradient-sign neighbours of ``x`` (float [0, 1]) against one-hot/soft targets ``y``, in inference mode."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        p = model(x, training=False)
        loss = tf.reduce_sum(tf.keras.losses.categorical_crossentropy(y, p))
    grad = tape.gradient(loss, x)
    return tf.stop_gradient(tf.clip_by_value(x + epsilon * tf.sign(grad), 0.0, 1.0))


def fgsm_accuracy(model: object, x: np.ndarray, labels: np.ndarray, epsilon: float, batch: int = 256) -> float:
    """Accuracy on FGSM neighbours of ``x`` (float (N, S, S, 1) in [0, 1]) with true ``labels`` (local indices)."""
    if len(x) == 0:
        return float("nan")
    k = int(model.output_shape[-1])
    hits = 0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        yb = np.eye(k, dtype=np.float32)[labels[i:i + batch]]
        adv = fgsm(model, xb, yb, epsilon)
        pred = np.asarray(model(adv, training=False)).argmax(axis=1)
        hits += int((pred == labels[i:i + batch]).sum())
    return hits / len(x)


def wrap(model: object, weight: float, epsilon: float = DEFAULT_EPSILON) -> object:
    """A trainer around ``model`` whose ``train_step`` adds ``weight`` x the loss on FGSM neighbours.

    The wrapper shares ``model``'s layers (``wrapper.inner is model``): save and export ``inner``, never the wrapper.
    Its ``loss`` metric stays the clean loss, so curves compare with plain runs; ``adv_loss`` is logged beside it.
    """
    import keras
    import tensorflow as tf

    check(weight, epsilon)

    class AdversarialModel(keras.Model):
        def __init__(self, inner: object) -> None:
            super().__init__(name=f"{inner.name}_adversarial")
            self.inner = inner
            self.weight, self.epsilon = float(weight), float(epsilon)
            self.adv_tracker = keras.metrics.Mean(name="adv_loss")

        def call(self, x: object, training: bool = False) -> object:
            return self.inner(x, training=training)

        def train_step(self, data: object) -> dict:
            x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
            x_adv = fgsm(self.inner, x, y, self.epsilon)
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                y_adv = self(x_adv, training=True)
                clean = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=True)
                adv = self.compute_loss(x=x_adv, y=y, y_pred=y_adv, sample_weight=sw, training=False)
                total = clean + self.weight * adv
            weights = self.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(total, weights), weights, strict=True))
            n = tf.shape(x)[0]
            self._loss_tracker.update_state(clean, sample_weight=n)
            self.adv_tracker.update_state(adv, sample_weight=n)
            return self.compute_metrics(x, y, y_pred, sample_weight=sw)

    return AdversarialModel(model)


def unwrap(model: object) -> object:
    """The plain classifier inside an adversarial wrapper (or the model itself)."""
    return getattr(model, "inner", model)
