"""Each training setting is defined once (a field of StageConfig or ChainConfig, fer_edge/train/settings.py): the
`fer-edge train` options, the config-file keys, the types and the checks all come from those fields, so a bad value
reads the same one line from the command line and from a file, and a new field is an option and a key at once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from fer_edge.cli import cli
from fer_edge.errors import FerEdgeError
from fer_edge.train import config
from fer_edge.train.cli import train
from fer_edge.train.cli_options import setting_options
from fer_edge.train.config import ChainConfig, config_from_settings, read_config_file
from fer_edge.train.settings import StageConfig, cli_settings, file_settings, stage_setting

REPO = Path(__file__).resolve().parents[1]
NOT_OPTIONS = {"stage": "the nested StageConfig: its fields are the options", "stages": "per-stage overrides",
               "phases": "a list of mappings"}  # config file only (or not a setting of its own)

# What run.json/plan.json record and --resume compares: a change here breaks resuming every earlier run.
STAGE_DEFAULTS = {
    "backbone": "compact", "input_size": None, "weights": "none", "epochs": 30, "batch_size": 64, "lr": 0.001,
    "weight_decay": 0.0001, "schedule": "cosine", "plateau_patience": 3, "plateau_factor": 0.5, "min_lr": 1e-06,
    "soft_labels": True, "class_weight": "none", "label_smoothing": 0.0, "augment": "strong", "patience": 10,
    "dropout": 0.4, "seed": 0, "phases": None, "adversarial": 0.0, "adv_epsilon": 0.02, "precision": "auto",
    "swa": 0, "teacher": "", "teacher_weight": 0.5, "soft_floor": 0.0,
}


def _all_fields() -> set[str]:
    return {f.name for f in fields(ChainConfig)} | {f.name for f in fields(StageConfig)}


def test_stage_config_fields_and_defaults_are_what_runs_recorded() -> None:
    assert json.loads(json.dumps(asdict(StageConfig()))) == STAGE_DEFAULTS
    assert list(asdict(StageConfig())) == list(STAGE_DEFAULTS)  # the field order too
    from fer_edge.train import settings, trainer

    assert (trainer.StageConfig, trainer.Phase, trainer.augment_level, trainer.AUGMENT_LEVELS) == (
        StageConfig, settings.Phase, settings.augment_level, settings.AUGMENT_LEVELS)  # older imports keep working


def test_every_setting_is_one_option_and_one_config_key() -> None:
    params = [p for p in train.params if p.name != "config_file"]
    names = [p.name for p in params]
    assert len(names) == len(set(names))
    assert set(names) == _all_fields() - set(NOT_OPTIONS)
    assert [s.name for s in cli_settings(ChainConfig)] == names  # the options are the generated ones, in order
    flags = [f for p in params for f in p.opts + p.secondary_opts]
    assert len(flags) == len(set(flags))
    for p in params:
        assert p.opts == ["--" + p.name.replace("_", "-")], p.opts
    assert config.FILE_KEYS == _all_fields() - {"stage"}
    assert config.STAGE_KEYS == {f.name for f in fields(StageConfig)} - {"backbone", "weights"}
    assert config.EXTRA_STAGE_KEYS == {"folds", "fold_epochs"}


def test_command_line_defaults_are_the_field_defaults() -> None:
    parsed = train.make_context("train", ["--out", "x"]).params
    stage = StageConfig()
    for s in cli_settings(StageConfig):
        assert parsed[s.name] == getattr(stage, s.name), s.name
    chain = ChainConfig(out="x")
    assert parsed["chain"] == ",".join(chain.chain) and parsed["backbones"] is None  # --backbone is the default
    for name in ("weights", "folds", "fold_epochs", "val_fraction", "limit", "gradcam_faces", "resume",
                 "keep_fold_models", "distribute"):
        assert parsed[name] == getattr(chain, name), name


def test_a_new_field_is_an_option_and_a_key_at_once() -> None:
    @dataclass(frozen=True)
    class Extended(StageConfig):
        warmup_epochs: int = stage_setting(2, "Warm-up epochs.", low=0)

    assert "warmup_epochs" in file_settings(Extended)
    assert [s.name for s in cli_settings(Extended)] == [s.name for s in cli_settings(StageConfig)] + ["warmup_epochs"]

    @click.command()
    @setting_options(Extended)
    def show(**options: object) -> None:
        click.echo(options["warmup_epochs"])

    assert CliRunner().invoke(show, ["--warmup-epochs", "5"]).output == "5\n"
    bad = CliRunner().invoke(show, ["--warmup-epochs", "-1"])
    assert isinstance(bad.exception, FerEdgeError)
    assert str(bad.exception) == "--warmup-epochs must be at least 0, got -1"

    @dataclass(frozen=True)
    class Undeclared(StageConfig):
        plain: int = field(default=1)

    with pytest.raises(TypeError, match=r"Undeclared\.plain is not declared with setting\(\)"):
        cli_settings(Undeclared)


def _line(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["train", *args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("class_weight", "heavy", "error: --class-weight: expected one of none, sqrt, balanced, got 'heavy'"),
    ("schedule", "linear", "error: --schedule: expected one of cosine, plateau, got 'linear'"),
    ("augment", "extreme", "error: --augment: expected one of heavy, strong, light, none, got 'extreme'"),
    ("distribute", "ring", "error: --distribute: expected one of auto, none, mirrored, multiworker, got 'ring'"),
    ("precision", "fp8", "error: --precision: expected one of auto, float32, mixed_float16, mixed_bfloat16, "
                         "got 'fp8'"),
    ("backbone", "resnet5", "error: --backbone: unknown backbone 'resnet5'"),
    ("epochs", "0", "error: --epochs must be at least 1, got 0"),
    ("lr", "many", "error: --lr: expected float, got 'many'"),
    ("limit", "5", "error: --limit must be at least 10 faces, got 5"),
    ("plateau_factor", "1", "error: --plateau-factor must be in (0, 1), got 1.0"),
    ("adv_epsilon", "nan", "error: --adv-epsilon must be a finite number, got nan"),  # NaN fails no comparison
    ("lr", "inf", "error: --lr must be a finite number, got inf"),
])
def test_a_bad_value_is_the_same_line_from_the_command_line_and_a_file(key: str, value: str, expected: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = str(tmp_path / "run")
    from_cli = _line(["--" + key.replace("_", "-"), value, "--out", out], tmp_path, monkeypatch)
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump({key: yaml.safe_load(value), "out": out}))
    from_file = _line(["--config", str(f)], tmp_path, monkeypatch)
    assert from_cli == from_file
    assert from_cli.startswith(expected), from_cli
    if key in config.STAGE_KEYS:  # the same check under stages:, naming the stage
        f.write_text(yaml.safe_dump({"out": out, "stages": {"ferplus": {key: yaml.safe_load(value)}}}))
        assert _line(["--config", str(f)], tmp_path, monkeypatch) == from_cli.replace("error: ", "error: stage "
                                                                                          "ferplus: ")


def test_file_values_coerce_to_the_field_types(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("out: runs/x\nlr: 5e-3\nepochs: '4'\nweight_decay: 0\nsoft_labels: 'no'\naugment: true\n"
                 "val_fraction: '0.2'\nfolds: 3.0\nkeep_fold_models: 'yes'\nchain: Ferplus, JAFFE\n"
                 "stages:\n  jaffe: {lr: '1e-4', fold_epochs: '2'}\n")
    assert yaml.safe_load(f.read_text())["lr"] == "5e-3"  # YAML 1.1 reads 5e-3 as text
    cfg = config_from_settings(read_config_file(f))
    s = cfg.stage
    assert (s.lr, s.epochs, s.weight_decay, s.soft_labels, s.augment) == (0.005, 4, 0.0, False, "strong")
    assert type(s.weight_decay) is float and type(s.epochs) is int
    assert (cfg.val_fraction, cfg.folds, cfg.keep_fold_models, cfg.chain) == (0.2, 3, True, ("ferplus", "jaffe"))
    assert cfg.stage_config("jaffe").lr == 1e-4 and cfg.fold_epochs_for("jaffe") == 2
    cfg.validate()
    for bad, match in ((4.5, "--epochs: expected int, got 4.5"), (True, "--epochs: expected int, got True"),
                       ("many", "--epochs: expected int, got 'many'")):
        with pytest.raises(FerEdgeError, match=match):
            config_from_settings({"out": "x", "epochs": bad})
    with pytest.raises(FerEdgeError, match="--resume: expected bool, got 'maybe'"):
        config_from_settings({"out": "x", "resume": "maybe"})


def test_the_command_line_and_a_file_build_the_same_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_edge.train import chain

    built: list[ChainConfig] = []

    def stop(cfg: ChainConfig, *args: object) -> None:
        built.append(cfg)
        raise FerEdgeError("stopped before training")

    monkeypatch.setattr(chain, "preflight", stop)
    settings = {"backbone": "sepnet", "schedule": "plateau", "lr": "5e-3", "patience": "30", "dropout": "0.2",
                "min_lr": "1e-5", "augment": "heavy", "hard_labels": None, "gradcam_faces": "4", "folds": "3"}
    args = [a for k, v in settings.items() for a in (["--" + k.replace("_", "-")] + ([v] if v else []))]
    _line([*args, "--out", str(tmp_path / "r")], tmp_path, monkeypatch)
    f = tmp_path / "c.json"
    keys = {("soft_labels" if k == "hard_labels" else k): (False if v is None else v) for k, v in settings.items()}
    f.write_text(json.dumps({**keys, "out": str(tmp_path / "r")}))
    _line(["--config", str(f)], tmp_path, monkeypatch)
    assert built[0] == built[1] and built[0].stage.soft_labels is False and built[0].stage.lr == 0.005


@pytest.mark.parametrize("config_file, run", [("sepnet/sepnet.yaml", "sepnet/run"),
                                              ("sepnet-strong100/strong100.yaml", "sepnet-strong100/run")])
def test_the_background_runs_configs_still_resume(config_file: str, run: str, tmp_path: Path) -> None:
    """results/train/*/run: a long run's config resumes only if --resume accepts its settings against the plan it
    started with (a setting added since reads as its default)."""
    from fer_edge.train.chain import _check_resume

    plan_file = REPO / "results/train" / run / "sepnet/ferplus/plan.json"
    if not plan_file.is_file():
        pytest.skip(f"no {run} plan here")
    settings = read_config_file(REPO / "results/train" / config_file)
    cfg = config_from_settings({**settings, "out": f"results/train/{run}", "resume": True})
    plan = json.loads(plan_file.read_text())
    (tmp_path / "plan.json").write_text(plan_file.read_text())
    now = {**plan, "config": json.loads(json.dumps(asdict(cfg.stage_config("ferplus", "sepnet"))))}
    _check_resume(tmp_path, now)  # raises FerEdgeError naming the settings that differ
    assert (cfg.val_fraction, cfg.limit, cfg.fold_epochs_for("ferplus")) == (plan["val_fraction"], plan["limit"],
                                                                             plan["fold_epochs"])
    with pytest.raises(FerEdgeError, match=r"config\.epochs"):
        _check_resume(tmp_path, {**now, "config": {**now["config"], "epochs": now["config"]["epochs"] + 1}})


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0])
def test_explicit_phases_need_a_finite_positive_lr(lr: float) -> None:
    phases = [{"name": "all", "unfreeze": 1.0, "lr": lr, "epochs": 1}]
    with pytest.raises(FerEdgeError, match="a finite lr > 0"):
        config.config_from_settings({"out": "run", "phases": phases}).validate()
