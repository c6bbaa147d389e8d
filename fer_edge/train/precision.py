"""Training precision: float32, or mixed float16/bfloat16 compute with float32 weights.

``auto`` picks mixed_float16 where TensorFlow sees a GPU and float32 otherwise. The softmax head always computes in
float32 (stable probabilities), and every model that is saved is a plain float32 copy, so checkpoints, conversion and
the runtime never see a mixed policy.
"""

from __future__ import annotations

from fer_edge.errors import FerEdgeError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve(precision: str) -> str:
    """The Keras dtype policy name for ``precision``."""
    if precision not in PRECISIONS:
        raise FerEdgeError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "mixed_float16" if gpu_available() else "float32"
    return precision


def policy_of(model: object) -> str:
    """The dtype policy of the model's first layer with weights of its own (nested models skipped)."""
    import keras

    for layer in model._flatten_layers(include_self=False):
        if layer.weights and not isinstance(layer, keras.Model):
            return layer.dtype_policy.name
    return "float32"


def with_policy(model: object, policy: str) -> object:
    """A copy of ``model`` (nested backbone included) computing in ``policy``; the "head" layer stays float32.
    Weights are copied as they are (they are float32 under every policy)."""
    import keras

    if policy_of(model) == policy:
        return model

    def clone(layer: object) -> object:
        cfg = layer.get_config()
        cfg["dtype"] = "float32" if layer.name in ("head", "head_new") else policy
        return layer.__class__.from_config(cfg)

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    new.set_weights(model.get_weights())
    return new


def as_float32(model: object) -> object:
    """The model as saved: itself when float32, else a float32 copy."""
    return with_policy(model, "float32")
