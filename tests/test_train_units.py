"""fer_edge.train without TensorFlow: metrics, folds, configs, reports, and the CLI's one-line errors."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
from helpers.cli import one_line_error

from fer_edge.errors import FerEdgeError
from fer_edge.train import config, folds, reports
from fer_edge.train.evaluate import confusion, fold_stats, metrics
from fer_edge.train.synthetic import bar_faces


def test_metrics_match_hand_computed_values() -> None:
    classes = ("neutral", "happiness", "surprise")
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    m = metrics(y_true, y_pred, classes)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["neutral"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                                         "f1": pytest.approx(0.8), "support": 3}
    assert m["per_class"]["happiness"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["surprise"]["recall"] == 1.0
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert confusion(y_true, y_pred, 3).sum() == 6


def test_macro_averages_skip_classes_without_support() -> None:
    m = metrics(np.array([0, 0]), np.array([0, 1]), ("neutral", "happiness", "fear"))
    assert m["macro_recall"] == pytest.approx(0.5)  # only neutral has support
    assert m["per_class"]["fear"]["support"] == 0


def test_fold_stats() -> None:
    s = fold_stats([0.8, 0.9, 1.0])
    assert s["folds"] == 3
    assert s["mean"] == pytest.approx(0.9)
    assert s["std"] == pytest.approx(np.std([0.8, 0.9, 1.0]))


def test_folds_never_share_subjects_and_validation_is_subject_held_out() -> None:
    ds, _ = bar_faces(120, ("happiness", "surprise", "contempt"), subjects=12, seed=0)
    cv = folds.cv_folds(ds, "kfold", 4, seed=0)
    assert len(cv) == 4
    seen = np.concatenate([te for _, te in cv])
    assert sorted(seen.tolist()) == list(range(len(ds)))  # every face tested exactly once
    for tr, te in cv:
        assert not set(ds.subjects[tr]) & set(ds.subjects[te])
        t2, va = folds.subject_holdout(ds, tr, 0.2, seed=1)
        assert len(va) and not set(ds.subjects[t2]) & set(ds.subjects[va])
        assert not set(ds.subjects[va]) & set(ds.subjects[te])  # validation never uses test subjects
    loso = folds.cv_folds(ds, "loso", None, seed=0)
    assert len(loso) == 12
    assert all(len(set(ds.subjects[te])) == 1 for _, te in loso)


def test_folds_need_subjects_and_enough_of_them() -> None:
    ds, _ = bar_faces(40, seed=0)
    with pytest.raises(FerEdgeError, match="subject ids"):
        folds.cv_folds(ds, "kfold", 3, 0)
    ds, _ = bar_faces(40, subjects=4, seed=0)
    with pytest.raises(FerEdgeError, match="fewer than the 10 folds"):
        folds.cv_folds(ds, "kfold", 10, 0)


def test_official_parts_carve_validation_from_train_when_missing() -> None:
    ds, _ = bar_faces(200, split=(0.0, 0.25), seed=0)
    train, val, test = folds.official_parts(ds, 0.1, 0)
    assert len(val) > 0 and len(train) + len(val) + len(test) == len(ds)
    assert set(train.files) & set(val.files) == set()
    assert (test.split == "test").all()


def test_subset_caps_each_split() -> None:
    ds, _ = bar_faces(300, split=(0.2, 0.2), seed=0)
    small = folds.subset(ds, 20, seed=0)
    for s in ("train", "val", "test"):
        assert (small.split == s).sum() == 20


def test_config_file_merges_and_checks(tmp_path) -> None:
    f = tmp_path / "chain.yaml"
    f.write_text("chain: [jaffe, ckplus]\nepochs: '4'\nout: runs/x\nstages:\n  ckplus: {lr: 0.0001, fold_epochs: 2}\n"
                 "data: {jaffe: /d/jaffe}\n")
    cfg = config.config_from_settings(config.read_config_file(f))
    assert cfg.chain == ("jaffe", "ckplus") and cfg.stage.epochs == 4
    assert cfg.stage_config("ckplus").lr == pytest.approx(1e-4)
    assert cfg.stage_config("jaffe").lr == pytest.approx(1e-3)
    assert cfg.fold_epochs_for("ckplus") == 2 and cfg.fold_epochs_for("jaffe") == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochz": 3}))
    with pytest.raises(FerEdgeError, match="unknown setting"):
        config.read_config_file(bad)
    with pytest.raises(FerEdgeError, match="expected int"):
        config.config_from_settings({"out": "x", "epochs": "many"})
    with pytest.raises(FerEdgeError, match="not both"):
        config.config_from_settings({"out": "x", "backbone": "compact", "backbones": "vgg19"})


def test_validate_rejects_bad_chains() -> None:
    ok = config.ChainConfig(out="x", chain=("ferplus", "jaffe"))
    ok.validate()
    with pytest.raises(FerEdgeError, match=r"unknown chain stage 'jafe'.*'jaffe'"):
        config.ChainConfig(out="x", chain=("jafe",)).validate()
    with pytest.raises(FerEdgeError, match="repeats"):
        config.ChainConfig(out="x", chain=("ferplus", "ferplus")).validate()
    with pytest.raises(FerEdgeError, match="no ImageNet weights"):
        config.ChainConfig(out="x", weights="imagenet").validate()


def test_reports_are_written_and_readable(tmp_path) -> None:
    hist = {"loss": [1.0, 0.5], "accuracy": [0.4, 0.7], "val_loss": [1.1, 0.9], "val_accuracy": [0.3, 0.6],
            "phase": ["head", "all"]}
    reports.write_history_csv(hist, tmp_path / "h.csv")
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,phase,") and rows[2].startswith("2,all,")
    classes = ("neutral", "happiness")
    reports.plot_curves(hist, tmp_path / "c.png")
    reports.plot_confusion(np.array([[3, 1], [0, 4]]), classes, tmp_path / "m.png")
    faces = np.zeros((3, 32, 32), np.uint8)
    heats = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    reports.plot_gradcam_grid(faces, heats, np.array([0, 1, 0]), np.array([1, 0, 1]), np.array([0.8998, 0.6, 0.5]),
                              classes, tmp_path / "g.png")
    for name in ("c.png", "m.png", "g.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[0] > 100
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_summary_table(tmp_path) -> None:
    rows = {"compact": {"ferplus": {"accuracy": 0.797, "seconds": 60},
                        "ckplus": {"accuracy": 0.9, "std": 0.05, "folds": 10, "seconds": 60}},
            "vgg19": {"ferplus": {"status": "failed"}}}
    reports.write_summary(tmp_path, ("ferplus", "ckplus"), rows)
    md = (tmp_path / "summary.md").read_text()
    assert "| compact | 79.70% | 90.00 ± 5.00% (10 folds) | 2.0 min |" in md
    assert "| vgg19 | failed | - |" in md
    assert json.loads((tmp_path / "summary.json").read_text())["results"]["compact"]["ckplus"]["folds"] == 10


def _one_line_error(args: list[str], monkeypatch, tmp_path) -> str:
    monkeypatch.chdir(tmp_path)
    return one_line_error(args)


@pytest.mark.parametrize("args, expected", [
    (["--epochs", "0"], "--epochs"),
    (["--backbone", "resnet5"], "--backbone"),
    (["--chain", "ferplus,jaffee"], "did you mean 'jaffe'"),
    (["--class-weight", "heavy"], "--class-weight"),
    (["--adv-epsilon", "2"], "--adv-epsilon"),
    (["--backbones", "compact,vgg91"], "unknown backbone 'vgg91'"),
    (["--backbone", "vgg19", "--backbones", "compact"], "not both"),
    (["--weights", "imagenet"], "compact has no imagenet weights"),
    (["--weights", "nowhere/model.keras"], "no such model file"),
    (["--teacher", "nowhere/teacher.keras"], "--teacher nowhere/teacher.keras: no such model file"),
    (["--teacher-weight", "1.5"], "--teacher-weight"),
    (["--augment", "extreme"], "--augment"),
    (["--data", "ferplus=/no/such/dir"], "no such file or folder"),
    (["--data", "ferplus"], "name=path"),
    (["--config", "missing.yaml"], "no such file"),
    ([], "--out is required"),
])
def test_train_bad_options_give_one_line(args, expected, monkeypatch, tmp_path) -> None:
    if args != [] and "--out" not in args:
        args = [*args, "--out", str(tmp_path / "run")]
    line = _one_line_error(["train", *args], monkeypatch, tmp_path)
    assert expected.lower() in line.lower(), line


@pytest.mark.parametrize("extra", [[], ["--data", "ferplus=/no/such/dir"]])
def test_train_config_data_not_a_mapping_gives_one_line(extra, monkeypatch, tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(f"data: [1, 2]\nout: {tmp_path / 'run'}\n")
    line = _one_line_error(["train", "--config", str(tmp_path / "c.yaml"), *extra], monkeypatch, tmp_path)
    assert line.startswith("error: data: expected a mapping of stage names to dataset folders"), line
    assert "got list [1, 2]" in line and "TypeError" not in line


def test_train_missing_runs_model_says_where_it_comes_from(monkeypatch, tmp_path) -> None:
    (tmp_path / "c.yaml").write_text(f"weights: runs/compact/compact/ferplus/model.keras\nout: {tmp_path / 'r'}\n")
    line = _one_line_error(["train", "--config", str(tmp_path / "c.yaml")], monkeypatch, tmp_path)
    assert "no such model file; run the earlier step first (docs/model.md)" in line
    assert "results/MODELS.md" in line
    line = _one_line_error(["train", "--teacher", "runs/t/model.keras", "--out", "r"], monkeypatch, tmp_path)
    assert "--teacher runs/t/model.keras: no such model file; run the earlier step first" in line
    line = _one_line_error(["train", "--weights", "elsewhere/m.keras", "--out", "r"], monkeypatch, tmp_path)
    assert "earlier step" not in line and "use imagenet, none or a .keras path" in line


def test_train_missing_data_gives_one_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FER_EDGE_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(folds, "data_roots", lambda: [tmp_path / "empty"])
    line = _one_line_error(["train", "--chain", "jaffe", "--out", str(tmp_path / "r")], monkeypatch, tmp_path)
    assert "no jaffe data found" in line and "--data jaffe=PATH" in line


def test_train_refuses_to_overwrite_without_resume(monkeypatch, tmp_path) -> None:
    (tmp_path / "r" / "compact" / "ferplus").mkdir(parents=True)
    (tmp_path / "r" / "compact" / "ferplus" / "plan.json").write_text("{}")
    data = tmp_path / "d"
    data.mkdir()
    line = _one_line_error(["train", "--data", f"ferplus={data}", "--out", str(tmp_path / "r")], monkeypatch,
                           tmp_path)
    assert "--resume" in line


def test_explain_missing_files_give_one_line(monkeypatch, tmp_path) -> None:
    line = _one_line_error(["explain", "nope.keras", "face.png"], monkeypatch, tmp_path)
    assert "nope.keras: no such model file" in line


def test_cli_is_light() -> None:
    """Importing the train commands must not import TensorFlow (help and option errors stay fast)."""
    import subprocess

    code = ("import sys, fer_edge.train.cli, fer_edge.train.chain; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_grid_goes_on_when_one_backbone_fails(monkeypatch, tmp_path) -> None:
    from fer_edge.train import chain

    def fake_stage(ctx, backbone, stage, ds, folder, init, init_classes):
        if backbone == "vgg19":
            raise RuntimeError("out of memory")
        ctx.bar.update(1)
        assert init is None or init.endswith("ferplus/model.keras")  # each stage starts from the previous one
        return chain.StageOutcome(folder / "model.keras", ds.classes, {"accuracy": 0.5, "seconds": 1.0})

    monkeypatch.setattr(chain, "run_stage", fake_stage)
    ds, _ = bar_faces(60, split=(0.2, 0.2), subjects=6, seed=0)
    cfg = config.ChainConfig(out=str(tmp_path), chain=("ferplus", "ckplus"), backbones=("vgg19", "compact"))
    result = chain.run_chain(cfg, {"ferplus": ds, "ckplus": ds})
    assert list(result.failed) == ["vgg19"] and "out of memory" in result.failed["vgg19"]
    md = (tmp_path / "summary.md").read_text()
    assert "| vgg19 | failed | failed |" in md and "| compact | 50.00% | 50.00% |" in md


def test_config_file_applies_and_command_line_wins(monkeypatch, tmp_path) -> None:
    f = tmp_path / "chain.json"
    f.write_text(json.dumps({"chain": "ferplus,jafe", "out": str(tmp_path / "r"), "backbones": "compact,vgg19"}))
    line = _one_line_error(["train", "--config", str(f)], monkeypatch, tmp_path)
    assert "unknown chain stage 'jafe'" in line  # the file's chain is used
    line = _one_line_error(["train", "--config", str(f), "--chain", "ferplus", "--data", "ferplus=/no/such"],
                           monkeypatch, tmp_path)
    assert "--data ferplus=/no/such: no such file or folder" in line  # the option replaced the file's chain


def test_resume_accepts_a_plan_written_before_a_setting_existed(tmp_path) -> None:
    """A run folder from before `swa`/`precision` existed resumes with their defaults, not with other values."""
    from dataclasses import asdict

    from fer_edge.train.chain import _check_resume
    from fer_edge.train.trainer import StageConfig

    plan = {"stage": "ferplus", "config": json.loads(json.dumps(asdict(StageConfig())))}
    older = json.loads(json.dumps(plan))
    del older["config"]["swa"], older["config"]["precision"]
    (tmp_path / "plan.json").write_text(json.dumps(older))
    _check_resume(tmp_path, plan)  # defaults: the same run
    changed = json.loads(json.dumps(plan))
    changed["config"]["swa"] = 3
    with pytest.raises(FerEdgeError, match=r"config\.swa"):
        _check_resume(tmp_path, changed)
    changed["config"]["swa"], changed["config"]["epochs"] = 0, 5
    with pytest.raises(FerEdgeError, match=r"config\.epochs"):
        _check_resume(tmp_path, changed)
    boolean = json.loads(json.dumps(older))
    boolean["config"]["augment"] = True  # before the levels, augment was true/false
    (tmp_path / "plan.json").write_text(json.dumps(boolean))
    _check_resume(tmp_path, plan)
    with pytest.raises(FerEdgeError, match=r"config\.augment"):
        _check_resume(tmp_path, {**plan, "config": {**plan["config"], "augment": "light"}})
    _check_resume(tmp_path, {**plan, "tta": "none"})  # plans from before tta read as none
    with pytest.raises(FerEdgeError, match=r"\(tta\)"):
        _check_resume(tmp_path, {**plan, "tta": "flip"})


def test_augment_levels() -> None:
    """none passes faces through; light only flips and shifts (a flat face stays flat, no intensity goes past the
    face's own range); strong also changes contrast and brightness and erases patches."""
    from fer_edge.train.trainer import StageConfig, make_dataset

    assert [StageConfig(augment=a).augment for a in (True, False, "true", "Light")] == ["strong", "none", "strong",
                                                                                        "light"]
    with pytest.raises(FerEdgeError, match="augment: expected one of heavy, strong, light, none"):
        StageConfig(augment="extreme")
    flat = np.full((64, 48, 48, 1), 0.5, np.float32)
    faces = bar_faces(64, size=48, seed=0)[0].images[..., :1].astype(np.float32) / 255
    y = np.zeros((64, 2), np.float32)

    def first_batch(x: np.ndarray, level: str) -> np.ndarray:
        return np.asarray(next(iter(make_dataset(x, y, None, 64, True, level, 0)))[0])

    assert np.array_equal(np.sort(first_batch(faces, "none").ravel()), np.sort(faces.ravel()))
    assert np.allclose(first_batch(flat, "light"), 0.5, atol=1e-6)
    assert not np.allclose(first_batch(flat, "strong"), 0.5, atol=1e-2)
    light = first_batch(faces, "light")
    assert not np.allclose(np.sort(light.ravel()), np.sort(faces.ravel()))  # shifted by fractions of a pixel
    assert light.min() >= faces.min() - 1e-6 and light.max() <= faces.max() + 1e-6  # no new intensities
    heavy = first_batch(flat, "heavy")  # brightness 0.2-1.2 times: a flat face stays flat, at another level
    levels = heavy.reshape(64, -1)
    assert np.allclose(levels, levels[:, :1], atol=1e-5) and levels.min() >= 0.1 - 1e-6 and levels.max() <= 0.6 + 1e-6
    assert levels[:, 0].std() > 0.05
    moved = first_batch(faces, "heavy")
    assert 0 <= moved.min() and moved.max() <= 1
    assert np.mean(np.abs(moved - faces)) > np.mean(np.abs(light - faces))  # rotation, shear, zoom: far more change


def test_plateau_halves_the_lr_and_keeps_its_counters_in_the_checkpoint_state(tmp_path) -> None:
    """Plateau: the LR drops after ``plateau_patience`` epochs without a lower val_loss, never below min_lr, and the
    counters live in state.json, so a resumed run starts at the lowered LR."""
    import keras

    from fer_edge.train.trainer import Phase, StageConfig, _EpochLog, _lr_schedule

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    state = {"phase": "all", "history": {}, "epochs_done": 0}
    cb = _EpochLog(state, tmp_path, tmp_path / "m.keras", 10, 100, 0, (2, 0.5, 0.003))
    cb.set_model(model)
    lrs = []
    for loss in (1.0, 1.1, 1.2, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99):
        cb._plateau_step(loss)
        lrs.append(round(state["plateau"]["lr"], 6))
    assert lrs == [0.01, 0.01, 0.005, 0.005, 0.005, 0.003, 0.003, 0.003, 0.003]
    assert state["history"]["lr"] == pytest.approx(lrs)
    saved = json.loads(json.dumps(state))
    cfg = StageConfig(schedule="plateau", lr=0.01)
    assert _lr_schedule(cfg, Phase("all", 1.0, 0.01, 5), 10, saved["plateau"]) == pytest.approx(0.003)
    assert _lr_schedule(cfg, Phase("top", 1.0, 0.01, 5), 10, saved["plateau"]) == 0.01  # a new phase starts afresh


def test_sepnet_is_small_separable_and_exports_like_every_backbone() -> None:
    from fer_edge.train.backbones import BACKBONES, build_classifier

    model = build_classifier(BACKBONES.get("sepnet"), 8, "none", 48, 0.2)
    assert 0.3e6 < model.count_params() < 1.0e6
    kinds = {type(layer).__name__ for layer in model.get_layer("backbone").layers}
    assert {"SeparableConv2D", "LeakyReLU", "SpatialDropout2D", "Add"} <= kinds and "Dense" not in kinds
    probs = np.asarray(model(np.random.default_rng(0).random((2, 48, 48, 1), np.float32), training=False))
    assert probs.shape == (2, 8) and np.allclose(probs.sum(1), 1, atol=1e-5)
    with pytest.raises(FerEdgeError, match="no ImageNet weights"):
        build_classifier(BACKBONES.get("sepnet"), 8, "imagenet", 48)


def test_soft_floor_drops_single_votes_and_keeps_the_rest() -> None:
    """label.csv vote rows (8 emotions, unknown, NF): --soft-floor 0.15 removes one-vote shares, renormalizes."""
    from fer_edge.data.ferplus import majority, soft_labels
    from fer_edge.data.types import FaceDataset
    from fer_edge.labels import EMOTIONS
    from fer_edge.train.trainer import targets

    votes = np.array([[6, 0, 0, 0, 1, 0, 0, 3, 0, 0],   # one anger vote on a neutral/contempt face
                      [0, 9, 0, 0, 0, 0, 0, 0, 1, 0],   # one unknown vote: not an emotion, already dropped
                      [2, 0, 2, 2, 2, 2, 0, 0, 0, 0],   # only two-vote shares: nothing below 0.15
                      [1, 1, 1, 1, 1, 1, 1, 1, 2, 0]])  # nothing left above the floor: kept as it was
    ds = FaceDataset("ferplus", "x", np.zeros((4, 48, 48, 1), np.uint8), majority(votes), EMOTIONS,
                     soft=soft_labels(votes))
    y = targets(ds, True, 0.0, 0.15)
    assert y[0] == pytest.approx([2 / 3, 0, 0, 0, 0, 0, 0, 1 / 3])
    assert y[1] == pytest.approx(np.eye(8)[1]) and y[2] == pytest.approx(ds.soft[2]) and y[3] == pytest.approx(0.125)
    assert targets(ds, True, 0.0)[0] == pytest.approx([0.6, 0, 0, 0, 0.1, 0, 0, 0.3])  # off by default
    assert targets(ds, False, 0.0, 0.15)[0] == pytest.approx(np.eye(8)[0])  # hard labels are not touched
