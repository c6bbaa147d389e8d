"""Short real training runs: the chain (artifacts, --resume after a kill, head rebuilt across class sets),
loss going down on real FERPlus faces, adversarial training, and ImageNet-offline as one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.errors import FerEdgeError
from fer_edge.train.config import ChainConfig
from fer_edge.train.synthetic import bar_faces
from fer_edge.train.trainer import Phase, StageConfig

pytestmark = pytest.mark.slow

STAGE_FILES = ("model.keras", "history.json", "history.csv", "curves.png", "confusion.png", "report.json",
               "report.txt", "gradcam.png", "run.json")


class Killed(Exception):
    """Stands in for a kill: raised from a callback right after an epoch's checkpoint was written."""


def epoch_hook(stop_after: int | None = None) -> object:
    """A Keras callback counting finished epochs; with ``stop_after`` it 'kills' the run after that many."""
    import keras

    class Hook(keras.callbacks.Callback):
        epochs = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            Hook.epochs += 1
            if stop_after is not None and Hook.epochs >= stop_after:
                raise Killed

    return Hook()


@pytest.fixture(scope="module")
def two_stages() -> dict:
    """A 3-class 'official split' stage and a subject-based stage with another class set (like FERPlus -> CK+)."""
    first, _ = bar_faces(150, ("neutral", "happiness", "surprise"), split=(0.2, 0.25), seed=1, name="ferplus")
    second, _ = bar_faces(60, ("happiness", "surprise", "contempt"), subjects=6, seed=2, name="ckplus")
    return {"ferplus": first, "ckplus": second}


def _weight_groups(path: Path) -> set[str]:
    """Top-level groups of a .keras file's weights (an optimizer saved with the model adds "optimizer")."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        return set(f.keys())


def test_chain_writes_everything_resumes_after_kill_and_rebuilds_head(tmp_path, two_stages, capsys) -> None:
    from fer_edge.train.chain import run_chain
    from fer_edge.train.surgery import load_model

    out = tmp_path / "run"
    cfg = ChainConfig(out=str(out), chain=("ferplus", "ckplus"), folds=2, gradcam_faces=4,
                      stage=StageConfig(input_size=32, epochs=3, batch_size=16, augment=False),
                      stages={"ckplus": {"phases": (Phase("head", 0.0, 1e-3, 1),)}})
    s1, s2 = out / "compact" / "ferplus", out / "compact" / "ckplus"

    with pytest.raises(Killed):
        run_chain(cfg, two_stages, callbacks=[epoch_hook(stop_after=1)])
    state = json.loads((s1 / "ckpt" / "state.json").read_text())
    assert state["epochs_done"] == 1 and not (s1 / "run.json").exists()
    first_loss = state["history"]["loss"][0]
    assert state["seconds"] > 0
    state["seconds"] = 5000.0  # as if the first epoch had taken 5000 s on another machine
    (s1 / "ckpt" / "state.json").write_text(json.dumps(state))

    with pytest.raises(FerEdgeError, match="--resume"):
        run_chain(cfg, two_stages)  # a second start over the same folder must not silently overwrite it

    hook = epoch_hook()
    result = run_chain(replace(cfg, resume=True), two_stages, callbacks=[hook])
    assert "resuming at epoch 1" in capsys.readouterr().out
    h1 = json.loads((s1 / "history.json").read_text())
    assert len(h1["loss"]) == 3 and h1["loss"][0] == first_loss  # continued, not restarted
    t1 = json.loads((s1 / "run.json").read_text())["timings"]
    assert 5000 < t1["train_seconds"] < 5000 + 600  # the earlier process's time counted, once
    assert hook.epochs == 2 + 3  # the 2 missing epochs of stage 1, then 2 folds + the final model of stage 2

    for stage in (s1, s2):
        for name in STAGE_FILES:
            assert (stage / name).is_file(), f"{stage.name}/{name} missing"
        for png in ("curves.png", "confusion.png", "gradcam.png"):
            assert cv2.imread(str(stage / png)) is not None
        run = json.loads((stage / "run.json").read_text())
        assert run["status"] == "finished"
        assert {"tensorflow", "keras", "numpy", "python"} <= set(run["versions"])
        assert len(run["data"]["sha256"]) == 64 and run["timings"]["seconds"] > 0
        assert (stage / "report.txt").read_text().count("\n") > 5
        assert not (stage / "ckpt" / "last.keras").exists()
        assert (stage / "saved_model" / "saved_model.pb").is_file()
        assert _weight_groups(stage / "model.keras") == {"layers", "vars"}  # no optimizer moments in the model

    r1 = json.loads((s1 / "report.json").read_text())
    assert set(r1["metrics"]["per_class"]) == {"neutral", "happiness", "surprise"}
    assert r1["metrics"]["n"] == int((two_stages["ferplus"].split == "test").sum())
    assert r1["folds"] is None and 0 <= r1["fgsm_accuracy"] <= 1
    r2 = json.loads((s2 / "report.json").read_text())
    assert r2["folds"]["folds"] == 2 and len(r2["folds"]["fold_accuracies"]) == 2
    assert "from the previous stage" in r2["protocol_text"] and r2["tta"] == "none"
    assert r2["metrics"]["n"] == len(two_stages["ckplus"])  # every face scored once, by a model that never saw it
    assert r2["folds"]["mean"] == pytest.approx(np.mean(r2["folds"]["fold_accuracies"]))
    assert set(r2["metrics"]["per_class"]) == {"happiness", "surprise", "contempt"}
    for fold in ("fold_01", "fold_02"):
        assert (s2 / "folds" / fold / "result.json").is_file() and not (s2 / "folds" / fold / "ckpt").exists()

    # new class set: head rebuilt (3 outputs, new classes), backbone weights carried over unchanged (head-only phase)
    m1, m2 = load_model(s1 / "model.keras"), load_model(s2 / "model.keras")
    assert json.loads((s2 / "run.json").read_text())["init"]["head"] == "rebuilt"
    for a, b in zip(m1.get_layer("backbone").get_weights(), m2.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(m1.layers[-1].get_weights()[0], m2.layers[-1].get_weights()[0])
    # the SavedModel beside each model.keras serves the same predictions
    import tensorflow as tf

    faces = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    loaded = tf.saved_model.load(str(s2 / "saved_model"))  # kept: its variables die with it
    served = loaded.serve(faces).numpy()
    np.testing.assert_allclose(served, m2.predict(faces, verbose=0), atol=1e-5)

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]["compact"]) == {"ferplus", "ckplus"}
    assert result.results["compact"]["ckplus"]["folds"] == 2
    assert "| compact |" in (out / "summary.md").read_text()

    # a finished run resumes to nothing; changed settings on --resume are an error, not a silent mix
    again = epoch_hook()
    run_chain(replace(cfg, resume=True), two_stages, callbacks=[again])
    assert again.epochs == 0
    with pytest.raises(FerEdgeError, match=r"different settings.*epochs"):
        run_chain(replace(cfg, resume=True, stage=replace(cfg.stage, epochs=4)), two_stages)


def test_loss_goes_down_on_real_ferplus_faces(ferplus_dir, tmp_path) -> None:
    from fer_edge.data.ferplus import majority, read_label_csv, soft_labels
    from fer_edge.data.types import FaceDataset
    from fer_edge.labels import EMOTIONS
    from fer_edge.train.trainer import train_stage

    def read(folder: str, n: int) -> FaceDataset:
        names, votes = read_label_csv(ferplus_dir / folder / "label.csv")
        keep = np.flatnonzero(majority(votes) >= 0)[:n]
        imgs = np.stack([cv2.imread(str(ferplus_dir / folder / names[i]), cv2.IMREAD_GRAYSCALE) for i in keep])
        return FaceDataset(folder, str(ferplus_dir), imgs[..., None], majority(votes)[keep], EMOTIONS,
                           soft=soft_labels(votes)[keep])

    train, val = read("FER2013Train", 320), read("FER2013Valid", 96)
    cfg = StageConfig(epochs=3, batch_size=32, augment=False)
    res = train_stage(train, val, cfg, tmp_path / "fp", verbose=0)
    loss = res.history["loss"]
    assert len(loss) == 3 and loss[-1] < 0.9 * loss[0], loss
    assert np.isfinite(res.history["val_loss"]).all()


def test_adversarial_training_uses_fgsm_neighbours_and_saves_a_plain_model(tmp_path) -> None:
    import keras

    from fer_edge.train.adversarial import fgsm, fgsm_accuracy
    from fer_edge.train.evaluate import predict
    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import to_model_input, train_stage

    train, _ = bar_faces(96, seed=4)
    val, _ = bar_faces(32, seed=5)
    cfg = StageConfig(input_size=32, batch_size=16, augment=False, adversarial=1.0, adv_epsilon=0.1,
                      phases=(Phase("all", 1.0, 1e-3, 2),), soft_labels=False)
    res = train_stage(train, val, cfg, tmp_path / "adv", verbose=0)
    h = res.history
    assert len(h["adv_loss"]) == 2 and h["adv_loss"][-1] > h["loss"][-1]  # neighbours are harder than the faces
    model = load_model(res.model_path)
    assert model.name == "fer_compact" and model.layers[-1].name == "head"  # the wrapper is never saved

    x = to_model_input(val.images, 32)
    y = val.local_labels()
    onehot = np.eye(2, dtype=np.float32)[y]
    adv = np.asarray(fgsm(model, x, onehot, 0.1))
    assert np.abs(adv - x).max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    ce = keras.losses.CategoricalCrossentropy()
    assert float(ce(onehot, predict(model, adv))) > float(ce(onehot, predict(model, x)))
    assert 0.0 <= fgsm_accuracy(model, x, y, 0.1) <= 1.0


def test_imagenet_offline_is_one_line(monkeypatch, tmp_path) -> None:
    from keras.src.utils import file_utils

    from fer_edge.cli import cli

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    (tmp_path / "ferplus").mkdir()
    result = CliRunner().invoke(cli, ["train", "--backbone", "mobilenetv2_035", "--weights", "imagenet",
                                      "--data", f"ferplus={tmp_path / 'ferplus'}", "--out", str(tmp_path / "r")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "could not get ImageNet weights for mobilenetv2_035" in lines[0] and "--weights none" in lines[0]


def test_from_scratch_batchnorm_settles_fast_enough_to_validate(tmp_path) -> None:
    """keras.applications MobileNets come with BatchNorm momentum 0.999; from scratch that left the moving
    statistics near their initial values for thousands of steps (MobileNetV2 on FERPlus validated at 0.26-0.37,
    one class, after two epochs). Every BatchNorm of a from-scratch backbone must settle at 0.99 or faster,
    also after a save and load."""
    import keras

    from fer_edge.train.backbones import BACKBONES, build_classifier
    from fer_edge.train.surgery import load_model

    model = build_classifier(BACKBONES.get("mobilenetv2_035"), 3, input_size=32)
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) > 40 and max(layer.momentum for layer in bns) <= 0.99
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert max(layer.momentum for layer in loaded._flatten_layers()
               if isinstance(layer, keras.layers.BatchNormalization)) <= 0.99
    # and it matters: 50 steps on data far from the initial statistics move the first moving mean most of the way
    first = next(layer for layer in bns if layer.name == "bn_Conv1")  # right after the first convolution
    x = np.full((64, 32, 32, 1), 0.9, np.float32)  # the backbone sees 0.9 * 2 - 1 = 0.8 (MobileNet's [-1, 1])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "categorical_crossentropy")  # weights fixed: stats only
    model.fit(x, np.eye(3)[np.zeros(64, int)], batch_size=8, epochs=7, verbose=0, shuffle=False)  # 56 steps
    backbone = model.get_layer("backbone")
    probe = keras.Model(backbone.input, first.input)
    target = keras.ops.convert_to_numpy(probe(np.full((8, 32, 32, 3), 0.8, np.float32))).mean(axis=(0, 1, 2))
    moved = np.abs(keras.ops.convert_to_numpy(first.moving_mean)) / (np.abs(target) + 1e-6)
    assert np.median(moved) == pytest.approx(1 - 0.99 ** 56, abs=0.05)  # 0.999 would give 0.054


def test_a_checkpoint_with_other_class_names_gets_its_head_rebuilt(tmp_path) -> None:
    """Same number of classes, different names (JAFFE's 7 vs CK+'s 7): starting a stage from the checkpoint must
    not reuse the head as if the classes matched; shared classes keep their rows, the new one starts fresh."""
    from fer_edge.train.backbones import BACKBONES, build_classifier
    from fer_edge.train.trainer import _initial_model

    jaffe = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
    ckplus = ("happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    m = build_classifier(BACKBONES.get("compact"), 7, "none", 32)
    m.save(tmp_path / "model.keras")
    (tmp_path / "run.json").write_text(json.dumps({"classes": list(jaffe)}))
    cfg = StageConfig(backbone="compact", weights=str(tmp_path / "model.keras"))
    t = _initial_model(BACKBONES.get("compact"), cfg, ckplus, 32, None)
    k_old, _ = m.layers[-1].get_weights()
    k_new, _ = t.layers[-1].get_weights()
    for j, c in enumerate(ckplus[:-1]):
        np.testing.assert_allclose(k_new[:, j], k_old[:, jaffe.index(c)])
    assert not np.allclose(k_new[:, 6], k_old[:, 6])  # contempt is not fear
    same = _initial_model(BACKBONES.get("compact"), cfg, jaffe, 32, None)
    np.testing.assert_allclose(same.layers[-1].get_weights()[0], k_old)  # same names: head kept as it is


def test_mixed_precision_trains_resumes_and_saves_float32(tmp_path) -> None:
    """The GPU path (auto = mixed_float16 where a GPU is seen), forced here on CPU: the network computes in float16
    with a float32 softmax head and loss scaling, a killed run resumes, and every saved model is plain float32."""
    import keras

    from fer_edge.train import precision
    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import train_stage

    assert precision.resolve("auto") == ("mixed_float16" if precision.gpu_available() else "float32")
    with pytest.raises(FerEdgeError, match="unknown precision"):
        precision.resolve("fp8")
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seen["policy"] = precision.policy_of(self.model)
            seen["head"] = self.model.get_layer("head").dtype_policy.name
            seen["optimizer"] = type(self.model.optimizer).__name__

    train, _ = bar_faces(96, seed=6)
    val, _ = bar_faces(32, seed=7)
    cfg = StageConfig(input_size=32, batch_size=16, augment=False, soft_labels=False, precision="mixed_float16",
                      phases=(Phase("all", 1.0, 3e-3, 3),))
    with pytest.raises(Killed):
        train_stage(train, val, cfg, tmp_path / "mp", verbose=0, callbacks=[Probe(), epoch_hook(stop_after=1)])
    res = train_stage(train, val, cfg, tmp_path / "mp", resume=True, verbose=0, callbacks=[Probe()])
    assert seen == {"policy": "mixed_float16", "head": "float32", "optimizer": "LossScaleOptimizer"}
    assert len(res.history["loss"]) == 3 and np.isfinite(res.history["loss"]).all()
    for path in (res.model_path, tmp_path / "mp" / "ckpt" / "last.keras"):
        model = load_model(path)
        assert {layer.dtype_policy.name for layer in model._flatten_layers() if layer.weights} == {"float32"}
    loss = res.history["loss"]
    assert loss[-1] < 0.5 * loss[0], loss  # it learned in float16 (validation needs more steps for BatchNorm)


def test_swa_averages_the_last_epochs_and_keeps_the_average_only_if_it_validates(tmp_path) -> None:
    import keras

    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import kept_epochs, train_stage

    kept = {}

    class Keep(keras.callbacks.Callback):  # the weights after each epoch, as the average should see them
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            kept[epoch] = [np.asarray(w) for w in self.model.get_layer("backbone").get_layer("s0_conv0").weights]

    train, _ = bar_faces(96, seed=8)
    val, _ = bar_faces(32, seed=9)
    cfg = StageConfig(input_size=32, batch_size=16, augment=False, soft_labels=False, swa=2,
                      phases=(Phase("all", 1.0, 3e-3, 3),))
    res = train_stage(train, val, cfg, tmp_path / "swa", verbose=0, callbacks=[Keep()])
    state = json.loads((tmp_path / "swa" / "ckpt" / "state.json").read_text())
    swa = state["swa"]
    assert swa["epochs"] == 2 and 0 <= swa["val_accuracy"] <= 1
    assert [f.name for f in kept_epochs(tmp_path / "swa")] == ["e0002.weights.h5", "e0003.weights.h5"]  # kept for
    # fer-edge average (tests/test_train_average.py)
    model = load_model(res.model_path)
    kernel = np.asarray(model.get_layer("backbone").get_layer("s0_conv0").kernel)
    average = (kept[1][0] + kept[2][0]) / 2
    if swa["used"]:
        assert res.best_val_accuracy == swa["val_accuracy"] >= swa["best_epoch_val_accuracy"]
        np.testing.assert_allclose(kernel, average, rtol=1e-5, atol=1e-7)
    else:
        assert res.best_val_accuracy == swa["best_epoch_val_accuracy"] > swa["val_accuracy"]
        assert not np.allclose(kernel, average)


def test_a_model_moves_to_a_larger_input_with_its_weights(tmp_path) -> None:
    import keras

    from fer_edge.errors import ModelError
    from fer_edge.train.backbones import BACKBONES, build_classifier
    from fer_edge.train.surgery import check_start_weights, load_model, resize_input
    from fer_edge.train.trainer import train_stage

    small = build_classifier(BACKBONES.get("compact"), 3, input_size=32)
    path = tmp_path / "small.keras"
    small.save(path)
    assert resize_input(small, 32) is small
    assert check_start_weights(path, "compact", 48) == 48  # no longer "does not match"
    with pytest.raises(ModelError, match="not a fer-edge classifier"):
        resize_input(keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten()]), 48)

    seen = {}

    class First(keras.callbacks.Callback):  # what training starts from, before any step
        def on_train_begin(self, logs: dict | None = None) -> None:
            seen.setdefault("weights", [np.asarray(w) for w in self.model.get_weights()])

    train, _ = bar_faces(64, ("neutral", "happiness", "surprise"), seed=3)
    val, _ = bar_faces(16, ("neutral", "happiness", "surprise"), seed=4)
    cfg = StageConfig(input_size=48, weights=str(path), batch_size=16, augment=False, soft_labels=False,
                      phases=(Phase("all", 1.0, 1e-3, 1),))
    res = train_stage(train, val, cfg, tmp_path / "at48", verbose=0, callbacks=[First()])
    assert load_model(res.model_path).input_shape[1:] == (48, 48, 1)
    assert len(seen["weights"]) == len(small.get_weights())
    for got, want in zip(seen["weights"], small.get_weights(), strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))


def test_a_teacher_joins_the_targets_by_class_name(tmp_path, monkeypatch, capsys) -> None:
    from fer_edge.train import trainer
    from fer_edge.train.backbones import BACKBONES, build_classifier
    from fer_edge.train.distill import teacher_probabilities
    from fer_edge.train.evaluate import predict

    # a teacher at another input size whose head lists the classes in another order (run.json says which)
    teacher = build_classifier(BACKBONES.get("compact"), 3, input_size=40)
    folder = tmp_path / "teacher"
    folder.mkdir()
    teacher.save(folder / "model.keras")
    order = ("surprise", "neutral", "happiness")
    (folder / "run.json").write_text(json.dumps({"classes": list(order)}))
    train, _ = bar_faces(48, ("neutral", "happiness", "surprise"), seed=5)
    val, _ = bar_faces(16, ("neutral", "happiness", "surprise"), seed=6)

    x = trainer.to_model_input(train.images, 40)
    raw = (predict(teacher, x) + predict(teacher, x[:, :, ::-1])) / 2
    want = raw[:, [order.index(c) for c in train.classes]]
    got = teacher_probabilities(folder / "model.keras", train)
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), atol=1e-5)

    seen = []
    real = trainer.make_dataset
    monkeypatch.setattr(trainer, "make_dataset", lambda x, y, *a, **k: seen.append(y) or real(x, y, *a, **k))
    cfg = StageConfig(input_size=32, batch_size=16, augment=False, soft_labels=False, teacher_weight=0.25,
                      teacher=str(folder / "model.keras"), phases=(Phase("all", 1.0, 1e-3, 1),))
    trainer.train_stage(train, val, cfg, tmp_path / "student", verbose=0)
    onehot = np.eye(3, dtype=np.float32)[train.local_labels()]
    np.testing.assert_allclose(seen[0], 0.75 * onehot + 0.25 * got, atol=1e-5)
    assert "25% of the targets" in capsys.readouterr().out

    other, _ = bar_faces(16, ("neutral", "fear"), seed=7)
    with pytest.raises(FerEdgeError, match="has no fear output"):
        teacher_probabilities(folder / "model.keras", other)
