"""Grad-CAM must point where the class is decided: a compact model trained on synthetic faces whose class is a
bar's orientation, the bar placed at random in the left or right half, must heat the half holding the bar."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.train.synthetic import bar_faces

pytestmark = pytest.mark.slow
SIZE = 48


def recalibrate_batchnorm(model: object, x: np.ndarray) -> None:
    """Set every BatchNorm's moving statistics to those of ``x``. A toy run of ~100 steps leaves momentum-0.99
    statistics far from converged (moving variance still ~0.4 of its initial 1.0), which breaks inference-mode
    predictions; real FERPlus training (450 steps an epoch) never meets this."""
    bns = [layer for layer in model.get_layer("backbone").layers if layer.__class__.__name__ == "BatchNormalization"]
    saved = [layer.momentum for layer in bns]
    for layer in bns:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, m in zip(bns, saved, strict=True):
        layer.momentum = m


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[object, str]:
    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import Phase, StageConfig, to_model_input, train_stage

    folder = tmp_path_factory.mktemp("gradcam")
    train, _ = bar_faces(256, size=SIZE, seed=1)
    val, _ = bar_faces(48, size=SIZE, seed=2)
    cfg = StageConfig(input_size=SIZE, batch_size=16, augment=False, soft_labels=False,
                      phases=(Phase("all", 1.0, 1e-3, 3),))
    res = train_stage(train, val, cfg, folder / "stage", verbose=0)
    model = load_model(res.model_path)
    recalibrate_batchnorm(model, to_model_input(train.images, SIZE))
    path = folder / "model.keras"
    model.save(path)
    return model, str(path)


def test_gradcam_heat_sits_on_the_bar(trained) -> None:
    from fer_edge.train.gradcam import gradcam
    from fer_edge.train.trainer import to_model_input

    model, _ = trained
    test, centres = bar_faces(100, size=SIZE, seed=3)
    x, y = to_model_input(test.images, SIZE), test.local_labels()
    heats, probs = gradcam(model, x, y)
    assert heats.shape == (100, SIZE, SIZE) and heats.min() >= 0 and heats.max() <= 1
    assert (probs.argmax(axis=1) == y).mean() >= 0.9  # the model learned the task, so the test means something
    left = heats[:, :, : SIZE // 2].sum(axis=(1, 2)) / np.maximum(heats.sum(axis=(1, 2)), 1e-9)
    on_bar_side = np.where(centres[:, 1] >= SIZE / 2, 1 - left, left)
    assert (on_bar_side > 0.5).mean() >= 0.9, np.round(on_bar_side, 2)
    assert np.median(on_bar_side) > 0.6
    peaks = np.array([np.unravel_index(h.argmax(), h.shape) for h in heats])
    # the bars of the two halves are ~SIZE/2 apart; the hottest pixel must be near the bar, not the other half
    assert np.median(np.linalg.norm(peaks - centres, axis=1)) < SIZE / 6


def test_explain_command_draws_heat_maps_for_image_files(trained, tmp_path) -> None:
    from fer_edge.cli import cli
    from fer_edge.train.trainer import to_model_input

    _, model_path = trained
    faces, _ = bar_faces(2, size=64, seed=7)  # another size on purpose: explain resizes to the model input
    files = []
    for i, img in enumerate(faces.images):
        files.append(str(tmp_path / f"face{i}.png"))
        cv2.imwrite(files[-1], img[..., 0])
    out = tmp_path / "explained"
    result = CliRunner().invoke(cli, ["explain", model_path, *files, "--out", str(out),
                                      "--classes", "neutral,happiness"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    model, _ = trained
    probs = np.asarray(model(to_model_input(faces.images, SIZE), training=False))
    expected = [("Neutral", "Happiness")[k] for k in probs.argmax(axis=1)]
    for line, name, want in zip(lines, files, expected, strict=True):
        assert re.fullmatch(rf"{re.escape(name)}: {want} \d{{1,3}}\.\d\d% -> .*face\d_gradcam\.png", line), line
    for i in range(2):
        img = cv2.imread(str(out / f"face{i}_gradcam.png"))
        assert img is not None and img.shape[1] > img.shape[0]  # face and overlay side by side

    bad = CliRunner().invoke(cli, ["explain", model_path, files[0], "--out", str(out)])
    assert bad.exit_code != 0 and "pass --classes" in bad.output and len(bad.output.strip().splitlines()) == 1


class _FakeModel:
    def __init__(self, channels: int, k: int) -> None:
        self.input_shape, self.output_shape, self.name = (None, SIZE, SIZE, channels), (None, k), "fake"


def _explain_inputs(monkeypatch: pytest.MonkeyPatch, channels: int, k: int = 2) -> list[np.ndarray]:
    """explain's model replaced by a stand-in; returns the list the model inputs it was given are put in."""
    from fer_edge.train import gradcam as mod

    fed: list[np.ndarray] = []

    def fake_gradcam(model: object, x: np.ndarray, targets: object = None) -> tuple[np.ndarray, np.ndarray]:
        fed.append(x)
        return np.zeros(x.shape[:3], np.float32), np.full((len(x), k), 1 / k, np.float32)

    monkeypatch.setattr(mod, "load_model", lambda path: _FakeModel(channels, k))
    monkeypatch.setattr(mod, "gradcam", fake_gradcam)
    return fed


@pytest.mark.parametrize("channels", [1, 3])
def test_explain_feeds_files_through_the_input_spec(channels: int, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path) -> None:
    from fer_edge.preprocess import model_input_spec
    from fer_edge.train.gradcam import explain

    fed = _explain_inputs(monkeypatch, channels)
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    bgr[..., 2] = 255  # a red face: a colour model must see red, not gray repeated
    cv2.imwrite(str(tmp_path / "face.png"), bgr)
    (e,) = explain(tmp_path / "m.keras", [tmp_path / "face.png"], classes=("neutral", "happiness"))
    flags = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    want = model_input_spec(SIZE, channels).prepare([cv2.imread(str(tmp_path / "face.png"), flags)], bgr=True)
    assert np.array_equal(fed[0], want)  # the runtime's Classifier feeds crops by this same spec
    assert e.face.shape == (SIZE, SIZE) and e.face.dtype == np.uint8


def test_explain_classes_win_over_an_older_records_unknown_label(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import json

    from fer_edge.errors import FerEdgeError
    from fer_edge.labels import EMOTIONS
    from fer_edge.train.gradcam import explain

    _explain_inputs(monkeypatch, 1, k=8)
    cv2.imwrite(str(tmp_path / "face.png"), np.full((48, 48), 128, np.uint8))
    (tmp_path / "run.json").write_text(json.dumps({"classes": [*EMOTIONS[:7], "smirk"]}))
    (tmp_path / "model.keras").write_bytes(b"stand-in")
    (e,) = explain(tmp_path / "model.keras", [tmp_path / "face.png"], classes=EMOTIONS)
    assert e.classes == EMOTIONS
    with pytest.raises(FerEdgeError, match="unknown emotion label 'smirk'"):
        explain(tmp_path / "model.keras", [tmp_path / "face.png"])
