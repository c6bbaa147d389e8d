"""Grad-CAM (Selvaraju et al. 2017) on the last conv feature map (the nested "backbone" output) of any fer-edge
classifier, and `explain`: heat maps for face image files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.labels import display
from fer_edge.preprocess import InputSpec
from fer_edge.train.plots import figure, overlay, save_figure
from fer_edge.train.surgery import class_names, load_model


@dataclass(frozen=True)
class Explanation:
    """Grad-CAM of one face: the face as the model saw it, the heat map (same size, [0, 1]) and the prediction."""

    source: str
    face: np.ndarray            # (S, S) uint8
    heat: np.ndarray            # (S, S) float32 in [0, 1]
    probs: np.ndarray           # (K,) softmax
    target: int                 # the class the heat map explains
    classes: tuple[str, ...]

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())

    def caption(self, index: int | None = None) -> str:
        """'Happiness 89.98%' for the predicted class (or ``index``)."""
        i = self.predicted if index is None else index
        return f"{display(self.classes[i])} {100 * float(self.probs[i]):.2f}%"


def _feature_model(model: object) -> object:
    """model input -> (last conv feature map, softmax), reading the map where "gap" takes it."""
    import keras

    try:
        features = model.get_layer("gap").input
    except ValueError:
        raise ModelError(f"{model.name}: not a fer-edge classifier (no 'gap' layer after a conv backbone)") from None
    return keras.Model(model.input, [features, model.output])


def _head(model: object) -> object:
    head = model.layers[-1]
    if head.__class__.__name__ != "Dense":
        raise ModelError(f"{model.name}: the last layer is {head.__class__.__name__}, expected the Dense head")
    return head


def gradcam(model: object, x: np.ndarray, targets: np.ndarray | None = None,
            batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps (N, S, S) in [0, 1] and softmax outputs (N, K) for float inputs ``x`` (N, S, S, 1) in [0, 1].

    Each heat map explains ``targets[i]`` (default: the predicted class) through the class *logit* (pre-softmax),
    as in the paper: ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of d logit / d A_k.
    """
    import tensorflow as tf

    feat_model, head = _feature_model(model), _head(model)
    size = x.shape[1:3]
    heats, probs_all = [], []
    for i in range(0, len(x), batch):
        xb = tf.convert_to_tensor(x[i:i + batch], dtype=tf.float32)
        with tf.GradientTape() as tape:
            fmap, probs = feat_model(xb, training=False)
            tape.watch(fmap)
            pooled = tf.reduce_mean(fmap, axis=(1, 2))
            logits = tf.matmul(pooled, head.kernel) + head.bias
            tb = (np.asarray(probs).argmax(axis=1) if targets is None else np.asarray(targets[i:i + batch]))
            score = tf.reduce_sum(tf.gather(logits, tb, axis=1, batch_dims=1))
        grads = tape.gradient(score, fmap)
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * fmap, axis=-1))[..., None]
        cam = tf.image.resize(cam, size, method="bilinear")[..., 0].numpy()
        top = cam.reshape(len(cam), -1).max(axis=1)
        heats.append(cam / np.where(top > 0, top, 1.0)[:, None, None])
        probs_all.append(np.asarray(probs))
    return np.concatenate(heats).astype(np.float32), np.concatenate(probs_all)


def explain(model_path: str | Path, images: list[str | Path], classes: tuple[str, ...] | None = None,
            target: str | None = None) -> list[Explanation]:
    """Grad-CAM for each face image file (treated as a face crop), fed to the model through its input spec
    (``fer_edge.preprocess.InputSpec.prepare``: the resize, colour and scaling training and the runtime use)."""
    from fer_edge.labels import canonical
    from fer_edge.run_record import input_spec_of

    model = load_model(model_path)
    k, size, channels = int(model.output_shape[-1]), int(model.input_shape[1]), int(model.input_shape[-1])
    classes = tuple(canonical(c) for c in classes) if classes else class_names(model_path, k)
    if len(classes) != k:
        raise FerEdgeError(f"--classes names {len(classes)} classes but the model has {k} outputs")
    tidx = None
    if target is not None:
        t = canonical(target)
        if t not in classes:
            raise FerEdgeError(f"--target {target!r} is not one of the model's classes: {', '.join(classes)}")
        tidx = classes.index(t)
    spec = input_spec_of(model_path, size, channels)  # as training fed it (the run record's input spec)
    x, face_arr = prepare_files(images, spec)
    targets = None if tidx is None else np.full(len(x), tidx)
    heats, probs = gradcam(model, x, targets)
    return [Explanation(str(p), f, h, pr, int(pr.argmax()) if tidx is None else tidx, classes)
            for p, f, h, pr in zip(images, face_arr, heats, probs, strict=True)]


def prepare_files(images: list[str | Path], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Model input (N, h, w, c) for face image files by ``spec``, and the faces as it sees them, gray uint8
    (N, h, w) for display. Gray specs read the files gray (as the data layer does), colour ones as BGR."""
    import cv2

    from fer_edge.data.imageio import load_image

    flags = cv2.IMREAD_GRAYSCALE if spec.channels == 1 else cv2.IMREAD_COLOR
    loaded = []
    for p in images:
        if not Path(p).is_file():
            raise FerEdgeError(f"{p}: not a readable image file")
        loaded.append(load_image(p, flags))  # declared size checked before decoding (FER_EDGE_MAX_PIXELS)
    shown = replace(spec, channels=1, color="gray", scale=1.0, mean=(0.0,), std=(1.0,))  # same resize, no scaling
    faces = np.rint(shown.prepare(loaded, bgr=True)[..., 0]).astype(np.uint8)
    return spec.prepare(loaded, bgr=True), faces


def save_explanation(e: Explanation, path: str | Path) -> Path:
    """One PNG: the face, the heat-map overlay, and the prediction as its title."""
    fig, axes = figure(1, 2, (5.2, 2.9))
    axes[0].imshow(e.face, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(Path(e.source).name, fontsize=8)
    axes[1].imshow(overlay(e.face, e.heat))
    title = e.caption()
    if e.target != e.predicted:
        title += f"\n(map for {display(e.classes[e.target])})"
    axes[1].set_title(title, fontsize=9)
    for a in axes:
        a.axis("off")
    return save_figure(fig, path)
