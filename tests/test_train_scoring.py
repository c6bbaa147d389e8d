"""The two ways a chain stage is scored (fer_edge.train.scoring), each returning a frozen StageScore: the official
test split, and subject-independent folds (every face scored once, by a model that never saw its subject)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.train.config import ChainConfig
from fer_edge.train.synthetic import bar_faces
from fer_edge.train.trainer import Phase, StageConfig

pytestmark = pytest.mark.slow

SC = StageConfig(input_size=32, batch_size=16, augment=False, soft_labels=False, phases=(Phase("all", 1.0, 1e-3, 1),))


class Bar:
    """Stands in for the chain's progress bar."""

    def __init__(self) -> None:
        self.units = 0

    def set_description(self, text: str) -> None:
        pass

    def update(self, n: int) -> None:
        self.units += n


def _job(stage: str, ds: object, folder: Path, folds: int | None = None, init: str | None = None) -> object:
    from fer_edge.train.stage import StageJob

    return StageJob("compact", stage, ds, folder, SC, init, {}, folds, 0.0, "2026-01-01T00:00:00")


def _predictions(model_path: Path, ds: object) -> np.ndarray:
    from fer_edge.preprocess import to_model_input
    from fer_edge.train.evaluate import predict
    from fer_edge.train.surgery import load_model

    return predict(load_model(model_path), to_model_input(ds.images, 32)).argmax(axis=1)


def test_score_official_scores_the_test_split_into_a_frozen_result(tmp_path) -> None:
    from fer_edge.train.scoring import score_official
    from fer_edge.train.stage import StageContext, StageScore, StartModel

    ds, _ = bar_faces(80, ("neutral", "happiness", "surprise"), split=(0.2, 0.25), seed=1, name="ferplus")
    ctx = StageContext(ChainConfig(out=str(tmp_path), gradcam_faces=3), Bar(), None)
    score = score_official(ctx, _job("ferplus", ds, tmp_path / "s"), StartModel(None, ds.classes, 0.4, None))
    assert isinstance(score, StageScore) and not score.cross_validated
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.units = 2
    test = ds.take(ds.split == "test")
    np.testing.assert_array_equal(score.y_true, test.local_labels())
    np.testing.assert_array_equal(score.y_pred, _predictions(tmp_path / "s" / "model.keras", test))
    assert (score.units, ctx.bar.units, score.folds, score.earlier_seconds) == (1, 1, None, 0.0)
    assert (score.head, score.source_classes) == ("new", None)
    assert list(score.timings) == ["train_seconds", "eval_seconds"] and len(score.history["loss"]) == 1
    wrong = int((score.y_pred != score.y_true).sum())
    assert len(score.mistakes["faces"]) == min(3, wrong) and 0 <= score.fgsm_accuracy <= 1


def test_score_folds_scores_every_face_once_and_hands_on_a_final_model(tmp_path) -> None:
    from fer_edge.train.backbones import BACKBONES, build_classifier
    from fer_edge.train.scoring import score_folds
    from fer_edge.train.stage import StageContext, StartModel

    first = ("neutral", "happiness", "surprise")
    start_from = tmp_path / "previous"
    start_from.mkdir()
    build_classifier(BACKBONES.get("compact"), 3, "none", 32).save(start_from / "model.keras")
    (start_from / "run.json").write_text(json.dumps({"classes": list(first)}))
    ds, _ = bar_faces(48, ("happiness", "surprise", "contempt"), subjects=6, seed=2, name="ckplus")
    cfg = ChainConfig(out=str(tmp_path), chain=("ckplus",), folds=2, fold_epochs=1, gradcam_faces=4)
    ctx = StageContext(cfg, Bar(), None)
    folder = tmp_path / "s"
    start = StartModel(str(start_from / "model.keras"), ds.classes, 0.4, None)
    score = score_folds(ctx, _job("ckplus", ds, folder, folds=2, init=str(start_from / "model.keras")), start)
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.folds = None
    assert score.cross_validated and (score.units, ctx.bar.units) == (3, 3)  # 2 folds + the final model
    assert (score.head, score.source_classes) == ("rebuilt", first)
    results = [json.loads((folder / "folds" / f"fold_0{i}" / "result.json").read_text()) for i in (1, 2)]
    order = np.concatenate([r["test_index"] for r in results])
    assert sorted(order.tolist()) == list(range(len(ds)))  # every face once
    for r in results:
        assert not set(r["test_subjects"]) & set(r["val_subjects"])
        assert not set(r["test_subjects"]) & {str(s) for i, s in enumerate(ds.subjects) if i not in r["test_index"]}
    np.testing.assert_array_equal(score.y_true, ds.local_labels()[order])
    np.testing.assert_array_equal(score.y_pred, np.concatenate([r["y_pred"] for r in results]))
    assert score.folds["folds"] == 2 and score.folds["mean"] == pytest.approx(np.mean([r["accuracy"] for r in results]))
    assert score.folds["test_subjects"] == [r["test_subjects"] for r in results]
    assert list(score.timings) == ["fold_seconds", "train_seconds"] and len(score.timings["fold_seconds"]) == 2
    assert (folder / "model.keras").is_file() and not (folder / "folds" / "fold_01" / "model.keras").exists()

    # on --resume the scored folds are read back and the finished final model is not trained again
    hook = _epoch_counter()
    again = score_folds(StageContext(dataclasses.replace(cfg, resume=True), Bar(), [hook]),
                        _job("ckplus", ds, folder, folds=2, init=str(start_from / "model.keras")), start)
    assert hook.epochs == 0
    np.testing.assert_array_equal(again.y_pred, score.y_pred)
    assert again.folds == score.folds


def _epoch_counter() -> object:
    import keras

    class Count(keras.callbacks.Callback):
        epochs = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            Count.epochs += 1

    return Count()


def test_flip_tta_scores_with_the_mirror_averaged_predictions(tmp_path, monkeypatch) -> None:
    """``tta: flip`` scores the official test split and every fold with each face's prediction averaged with its
    mirror image's, as ``fer-edge run --flip-tta`` does (``tta: none`` does not); the fold info says so."""
    from fer_edge.preprocess import to_model_input
    from fer_edge.train import evaluate as ev
    from fer_edge.train.scoring import score_folds, score_official
    from fer_edge.train.stage import StageContext, StartModel
    from fer_edge.train.surgery import load_model

    calls = []
    real = ev.predict

    def spy(model: object, x: np.ndarray, batch: int = 256, flip: bool = False) -> np.ndarray:
        calls.append((len(x), flip))
        return real(model, x, batch, flip)

    monkeypatch.setattr(ev, "predict", spy)
    ds, _ = bar_faces(80, ("neutral", "happiness", "surprise"), split=(0.2, 0.25), seed=1, name="ferplus")
    test = ds.take(ds.split == "test")
    for tta in ("none", "flip"):
        calls.clear()
        ctx = StageContext(ChainConfig(out=str(tmp_path), gradcam_faces=3, tta=tta), Bar(), None)
        score = score_official(ctx, _job("ferplus", ds, tmp_path / tta), StartModel(None, ds.classes, 0.4, None))
        assert ((len(test), True) in calls) == (tta == "flip")  # flip=True: the mirror-averaged predictions
        model = load_model(tmp_path / tta / "model.keras")
        x = to_model_input(test.images, 32)
        probs = (real(model, x) + real(model, x[:, :, ::-1])) / 2 if tta == "flip" else real(model, x)
        np.testing.assert_allclose(real(model, x, flip=True), (real(model, x) + real(model, x[:, :, ::-1])) / 2,
                                   atol=1e-6)
        np.testing.assert_array_equal(score.y_pred, probs.argmax(axis=1))
        wrong = score.y_pred != score.y_true
        shown = probs[wrong, score.y_pred[wrong]]  # the grid's confidences are these probabilities, not the others
        assert all(np.abs(shown - c).min() < 1e-6 for c in score.mistakes["conf"])

    cv, _ = bar_faces(48, ("neutral", "happiness", "surprise"), subjects=6, seed=2, name="ckplus")
    cfg = ChainConfig(out=str(tmp_path), chain=("ckplus",), folds=2, fold_epochs=1, gradcam_faces=2, tta="flip")
    calls.clear()
    score = score_folds(StageContext(cfg, Bar(), None), _job("ckplus", cv, tmp_path / "cv", folds=2),
                        StartModel(None, cv.classes, 0.4, None))
    assert score.folds["tta"] == "flip"
    sizes = [len(json.loads((tmp_path / "cv" / "folds" / f"fold_0{i}" / "result.json").read_text())["test_index"])
             for i in (1, 2)]
    assert all((n, True) in calls for n in sizes)
