"""Model surgery on saved fer-edge classifiers: load one, tell its class order, give it a new head for another class
set (rows of the classes both heads share are kept), move it to another input size, and check a start model or
the ImageNet weights before any data is read.

Every classifier has the shape ``fer_edge.train.backbones`` builds: input -> ... -> nested "backbone" -> "gap" ->
"head_dropout" -> Dense "head" (softmax), so surgery needs no knowledge of the backbone inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.train.backbones import BACKBONES, build_classifier


def load_model(path: str | Path) -> object:
    """Load a .keras classifier (a run folder means its model.keras); a wrong or corrupt file is one clear error."""
    import keras

    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable Keras model ({type(exc).__name__}: {str(exc)[:120]})") from None


def saved_input_size(path: str | Path) -> int:
    """The face size (px) a saved classifier takes."""
    return int(load_model(path).input_shape[1])


def class_names(model_path: str | Path, n: int) -> tuple[str, ...]:
    """Class order of a model: from the run record a fer-edge stage writes beside it (``fer_edge.run_record``),
    else the 8 canonical emotions when the head has 8 outputs; anything else needs ``--classes``."""
    from fer_edge.run_record import classes_of

    found = classes_of(model_path, n)
    if found is None:
        raise FerEdgeError(f"{model_path}: cannot tell the order of its {n} classes (no run.json beside it); "
                           "pass --classes a,b,c")
    return found


def model_classes(path: str | Path, n: int) -> tuple[str, ...] | None:
    """Class order of a saved model if it can be told (run.json beside it, or 8 outputs = canonical), else None."""
    try:
        return class_names(path, n)
    except FerEdgeError:
        return None


def rehead(model: object, classes: tuple[str, ...], dropout: float = 0.4,
           old: tuple[str, ...] | None = None) -> object:
    """The same network with a new softmax head over ``classes``: everything up to "gap" is kept (same layer
    objects, so same weights) and the new layers keep the names "head_dropout" and "head". When the old head's
    classes ``old`` are known, the rows of the classes both heads share are copied; the others start fresh."""
    import keras
    from keras import layers

    features = model.get_layer("gap").output
    x = layers.Dropout(dropout, name="head_dropout")(features)
    head = layers.Dense(len(classes), activation="softmax", name="head")
    result = keras.Model(model.input, head(x), name=model.name)
    if old:
        k_old, b_old = (np.asarray(w) for w in model.layers[-1].get_weights())
        if k_old.shape[-1] != len(old):
            raise ModelError(f"{model.name}: its head has {k_old.shape[-1]} outputs, not the {len(old)} classes "
                             f"{', '.join(old)}")
        k_new, b_new = (np.asarray(w).copy() for w in head.get_weights())
        for j, c in enumerate(classes):
            if c in old:
                k_new[:, j], b_new[j] = k_old[:, old.index(c)], b_old[old.index(c)]
        head.set_weights([k_new, b_new])
    return result


def resize_input(model: object, size: int) -> object:
    """The same classifier taking ``size`` px faces, weights copied: every fer-edge backbone ends in global average
    pooling, so its weights do not depend on the input size. Fine-tuning a 48 px model at 64 px (upsampled faces,
    larger feature maps, no more parameters) gave the default model 1.3 points (results/train/compact-64)."""
    if int(model.input_shape[1]) == size:
        return model
    if not model.name.startswith("fer_") or model.name[4:] not in BACKBONES:
        raise ModelError(f"cannot resize {model.name!r}: not a fer-edge classifier")
    spec = BACKBONES.get(model.name[4:])
    new = build_classifier(spec, int(model.output_shape[-1]), "none", size, model.get_layer("head_dropout").rate)
    try:
        new.set_weights(model.get_weights())
    except ValueError as exc:
        raise FerEdgeError(f"{spec.name} weights depend on the input size; cannot move them to {size} px "
                           f"({str(exc).splitlines()[0]})") from None
    return new


def start_model(source: str | Path, classes: tuple[str, ...], dropout: float, seed: int,
                source_classes: tuple[str, ...] | None = None) -> tuple[object, str, tuple[str, ...] | None]:
    """Load ``source`` for a stage with ``classes``; rebuild its head when the class set differs.
    Returns the model, what happened to the head ("kept" or "rebuilt") and the source's classes if known."""
    import keras

    model = load_model(source)
    n = int(model.output_shape[-1])
    src = source_classes or model_classes(source, n)
    if src is None and n == len(classes):
        src = classes  # an unlabelled head of the right size: assume the same order
    src = tuple(src) if src else None
    if src == tuple(classes):
        return model, "kept", src
    keras.utils.set_random_seed(seed)
    return rehead(model, tuple(classes), dropout, src), "rebuilt", src


def check_start_weights(path: str | Path, backbone: str, input_size: int | None) -> int:
    """A --weights PATH model must be a fer-edge classifier of ``backbone``; returns its input size."""
    model = load_model(path)
    names = {layer.name for layer in model.layers}
    if "gap" not in names or "backbone" not in names:
        raise ModelError(f"--weights {path}: not a fer-edge classifier (no backbone/gap layers)")
    if model.name.startswith("fer_") and model.name[4:] != backbone:
        raise FerEdgeError(f"--weights {path} holds a {model.name[4:]} model; use --backbone {model.name[4:]}")
    if input_size and input_size != int(model.input_shape[1]):
        resize_input(model, input_size)  # fails here, before any data is read, if the weights cannot move
        return input_size
    return int(model.input_shape[1])


def check_imagenet(backbone: str, size: int) -> None:
    """Build the backbone with ImageNet weights once, so an offline machine fails before any data is read."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # keras prints "Downloading data from ..." first
        build_classifier(BACKBONES.get(backbone), 2, "imagenet", size)
    print(f"ImageNet weights for {backbone}: ready", flush=True)
