"""Model surgery (fer_edge.train.surgery): one re-head function keeps the features and the rows of shared classes,
starts the other rows fresh, and leaves a model that still moves to another input size with its weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_edge.errors import ModelError

OLD = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
NEW = ("happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")  # CK+: no neutral


def _classifier(n: int, size: int = 32) -> object:
    from fer_edge.train.backbones import BACKBONES, build_classifier

    model = build_classifier(BACKBONES.get("compact"), n, "none", size)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.linspace(-1, 1, n).astype(bias.dtype)])  # a bias a fresh head never has
    return model


def test_rehead_keeps_features_and_shared_class_rows_and_starts_new_rows_fresh() -> None:
    from fer_edge.train.surgery import rehead

    m = _classifier(len(OLD))
    new = ("happiness", "surprise", "contempt", "confusion")  # three shared (in another order), one unseen
    t = rehead(m, new, 0.25, OLD)
    assert t.output_shape[-1] == 4 and t.name == m.name == "fer_compact"
    assert [layer.name for layer in t.layers[-2:]] == ["head_dropout", "head"]
    assert t.get_layer("head_dropout").rate == 0.25
    assert t.get_layer("backbone") is m.get_layer("backbone")  # same layer objects, so same weights
    k_old, b_old = m.get_layer("head").get_weights()
    k_new, b_new = t.get_layer("head").get_weights()
    for j, c in enumerate(new[:3]):
        np.testing.assert_array_equal(k_new[:, j], k_old[:, OLD.index(c)])
        assert b_new[j] == b_old[OLD.index(c)]
    assert b_new[3] == 0 and not any(np.allclose(k_new[:, 3], k_old[:, i]) for i in range(len(OLD)))
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(t(x)).sum(axis=1), 1.0, rtol=1e-5)  # a softmax over the new classes


def test_rehead_without_old_classes_starts_every_row_fresh_and_the_model_still_resizes() -> None:
    """A model in memory (no class names): all rows fresh; the rebuilt head keeps the layer names resize_input and
    Grad-CAM look for, so moving it to 48 px keeps every weight."""
    from fer_edge.train.surgery import rehead, resize_input

    m = _classifier(len(OLD))
    t = rehead(m, NEW)
    k_old, _ = m.get_layer("head").get_weights()
    k_new, b_new = t.get_layer("head").get_weights()
    assert k_new.shape == (k_old.shape[0], 7) and not b_new.any()
    assert not any(np.allclose(k_new[:, j], k_old[:, i]) for j in range(7) for i in range(len(OLD)))
    big = resize_input(t, 48)
    assert big.input_shape[1:] == (48, 48, 1) and big.output_shape[-1] == 7
    assert big.get_layer("head_dropout").rate == t.get_layer("head_dropout").rate
    for got, want in zip(big.get_weights(), t.get_weights(), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert resize_input(big, 48) is big


def test_rehead_refuses_old_classes_that_do_not_match_the_head() -> None:
    from fer_edge.train.surgery import rehead

    with pytest.raises(ModelError, match="its head has 8 outputs, not the 7 classes"):
        rehead(_classifier(len(OLD)), OLD, 0.4, NEW)


def test_start_model_keeps_or_rebuilds_by_class_names(tmp_path) -> None:
    from fer_edge.train.surgery import saved_input_size, start_model

    m = _classifier(len(NEW), size=40)
    m.save(tmp_path / "model.keras")
    (tmp_path / "run.json").write_text(json.dumps({"classes": list(NEW)}))
    assert saved_input_size(tmp_path) == 40
    kept, head, src = start_model(tmp_path / "model.keras", NEW, 0.4, 0)
    assert (head, src) == ("kept", NEW)
    np.testing.assert_array_equal(kept.get_layer("head").get_weights()[0], m.get_layer("head").get_weights()[0])
    other = ("neutral", "happiness", "surprise")
    a, head, src = start_model(tmp_path / "model.keras", other, 0.4, 7)
    b = start_model(tmp_path / "model.keras", other, 0.4, 7)[0]
    assert (head, src, a.output_shape[-1]) == ("rebuilt", NEW, 3)
    k_old = m.get_layer("head").get_weights()[0]
    for j, c in enumerate(other[1:], start=1):
        np.testing.assert_array_equal(a.get_layer("head").get_weights()[0][:, j], k_old[:, NEW.index(c)])
    np.testing.assert_array_equal(a.get_layer("head").get_weights()[0], b.get_layer("head").get_weights()[0])  # seed
