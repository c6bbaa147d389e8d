"""Distillation from an ensemble (``--teacher A,B``): the targets mix in the mean of the members' predictions, each
member's classes matched by name, and every path is checked before training starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.train.config import config_from_settings
from fer_edge.train.synthetic import bar_faces

CLASSES = ("neutral", "happiness", "surprise")


def _teacher(folder: Path, order: tuple[str, ...], size: int, favours: str) -> Path:
    """An untrained model whose head's bias makes it favour one class (so two members differ)."""
    from fer_edge.train.backbones import BACKBONES, build_classifier

    folder.mkdir()
    model = build_classifier(BACKBONES.get("compact"), len(order), input_size=size)
    head = model.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.where(np.array(order) == favours, 2.0, 0.0).astype(bias.dtype)])
    model.save(folder / "model.keras")
    (folder / "run.json").write_text(json.dumps({"classes": list(order)}))
    return folder / "model.keras"


def test_an_ensemble_teacher_is_the_mean_of_its_members(tmp_path: Path) -> None:
    from fer_edge.train.distill import ensemble_probabilities, teacher_paths, teacher_probabilities

    a = _teacher(tmp_path / "a", ("surprise", "neutral", "happiness"), 40, "surprise")
    b = _teacher(tmp_path / "b", CLASSES, 32, "neutral")
    train, _ = bar_faces(24, CLASSES, seed=5)
    pa, pb = teacher_probabilities(a, train), teacher_probabilities(b, train)
    assert (pa.argmax(1) == CLASSES.index("surprise")).all() and (pb.argmax(1) == 0).all()  # by name, not index
    paths = teacher_paths(f"{a}, {b},")
    assert paths == (str(a), str(b))
    got = ensemble_probabilities(paths, train)
    np.testing.assert_allclose(got, (pa + pb) / 2, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    with pytest.raises(FerEdgeError, match="no model path"):
        ensemble_probabilities((), train)


def test_each_teacher_path_is_checked_in_one_line(tmp_path: Path) -> None:
    a = tmp_path / "a.keras"
    a.write_bytes(b"")
    missing = tmp_path / "gone.keras"
    with pytest.raises(FerEdgeError, match=f"--teacher {missing}: no such model file"):
        config_from_settings({"chain": ["ferplus"], "out": str(tmp_path / "run"),
                              "teacher": f"{a},{missing}"}).validate()


def test_probabilities_are_taken_over_the_classes_by_name() -> None:
    from fer_edge.train.distill import by_name

    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]], np.float32)  # over a, b, c
    got = by_name(p, ("a", "b", "c"), ("c", "a"))
    np.testing.assert_allclose(got, [[0.75, 0.25], [0.5, 0.5]], rtol=1e-6)  # c then a, renormalized without b
    np.testing.assert_allclose(by_name(p, ["a", "b", "c"], ("a", "b", "c")), p, rtol=1e-6)
    np.testing.assert_array_equal(by_name(np.zeros((1, 2)), ("a", "b"), ("a",)), [[0.0]])  # nothing to renormalize
    with pytest.raises(FerEdgeError, match=r"^the model has no d output \(it knows a, b, c\)$"):
        by_name(p, ("a", "b", "c"), ("a", "d"))
