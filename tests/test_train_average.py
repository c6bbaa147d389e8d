"""fer-edge average (fer_edge/train/average.py): a finished stage's kept epochs averaged after the run, the variant
best on validation written with a run.json that conversion reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.cli import one_line_error as _one_line_error
from helpers.datasets import make_bar_ferplus

from fer_edge.cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A FERPlus-layout stage on disk trained 3 epochs with --swa 3 (its 3 epochs kept in ckpt/swa/)."""
    from fer_edge.train.chain import run_chain
    from fer_edge.train.config import ChainConfig
    from fer_edge.train.trainer import Phase, StageConfig

    data = make_bar_ferplus(tmp_path_factory.mktemp("ferplus"), (96, 48, 48))
    out = tmp_path_factory.mktemp("run") / "run"
    cfg = ChainConfig(out=str(out), chain=("ferplus",), gradcam_faces=2, data={"ferplus": str(data)},
                      stage=StageConfig(input_size=32, batch_size=16, augment=False, swa=3,
                                        phases=(Phase("all", 1.0, 3e-3, 3),)))
    run_chain(cfg)
    return {"stage": out / "compact" / "ferplus", "data": data}


def _kernel(model: object) -> np.ndarray:
    return np.asarray(model.get_layer("backbone").get_layer("s0_conv0").kernel)


def _mean_kernel(stage: Path, files: list[Path]) -> np.ndarray:
    from fer_edge.train.surgery import load_model

    model = load_model(stage / "model.keras")
    kernels = []
    for f in files:
        model.load_weights(f)
        kernels.append(_kernel(model))
    return np.mean(kernels, axis=0)


def test_average_scores_each_count_and_keeps_the_best_on_validation(trained, tmp_path) -> None:
    from fer_edge.convert.source import open_source
    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import kept_epochs

    stage, out = trained["stage"], tmp_path / "avg"
    files = kept_epochs(stage)
    assert [f.name for f in files] == ["e0001.weights.h5", "e0002.weights.h5", "e0003.weights.h5"]
    before = (stage / "model.keras").read_bytes()

    res = CliRunner().invoke(cli, ["average", str(stage), "--epochs", "3,1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "average.json").read_text())
    variants = record["variants"]
    assert set(variants) == {"model", "last_1", "last_3"} and record["counts"] == [1, 3]
    for v in variants.values():
        assert 0 <= v["val_accuracy"] <= 1 and 0 <= v["test_accuracy"] <= 1  # an official split: test scored too
    best = max(v["val_accuracy"] for v in variants.values())
    kept = record["kept"]
    assert variants[kept]["val_accuracy"] == best
    assert kept != "model" or variants["model"]["val_accuracy"] == best  # ties keep the stage's own model
    assert f"kept {kept} (of 3 kept epochs)" in res.output

    written = load_model(out / "model.keras")
    if kept == "model":
        np.testing.assert_array_equal(_kernel(written), _kernel(load_model(stage / "model.keras")))
    else:
        np.testing.assert_allclose(_kernel(written), _mean_kernel(stage, files[-variants[kept]["epochs"]:]),
                                   rtol=1e-5, atol=1e-7)
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["best_val_accuracy"] == best
    assert run["summary"]["accuracy"] == variants[kept]["test_accuracy"]
    assert run["summary"]["model"] == str(out / "model.keras")
    source = open_source(out)  # what fer-edge convert reads: the stage's classes and data
    assert source.classes(int(written.output_shape[-1])) == tuple(run["classes"])
    assert (stage / "model.keras").read_bytes() == before  # the stage itself is left as it was


def test_the_chosen_average_is_the_mean_of_the_newest_epochs(trained, tmp_path, monkeypatch) -> None:
    """Validation decides (here made to prefer the 2-epoch average): the file written holds that mean."""
    from fer_edge.train import average
    from fer_edge.train.surgery import load_model
    from fer_edge.train.trainer import kept_epochs

    calls = iter([0.5, 0.4, 0.6, 0.55])  # model, last_1, last_2, last_3
    monkeypatch.setattr(average, "_scores", lambda model, val, test: {"val_accuracy": next(calls)})
    res = average.average_stage(trained["stage"], [3, 1, 2], tmp_path / "avg")
    assert res.kept == "last_2" and res.epochs_kept == 3
    np.testing.assert_allclose(_kernel(load_model(tmp_path / "avg" / "model.keras")),
                               _mean_kernel(trained["stage"], kept_epochs(trained["stage"])[-2:]), rtol=1e-5,
                               atol=1e-7)
    assert json.loads((tmp_path / "avg" / "run.json").read_text())["summary"]["best_val_accuracy"] == 0.6


def test_bad_input_is_one_line(trained, tmp_path) -> None:
    import shutil

    stage = str(trained["stage"])
    assert "no such stage folder" in _one_line_error(["average", str(tmp_path / "nope"), "--epochs", "2"])
    assert "1..3" in _one_line_error(["average", stage, "--epochs", "4"])
    assert "1..3" in _one_line_error(["average", stage, "--epochs", "0,2"])
    assert "expected counts" in _one_line_error(["average", stage, "--epochs", "two"])
    assert "other than the stage" in _one_line_error(["average", stage, "--epochs", "2", "--out", stage])
    other = make_bar_ferplus(tmp_path / "other", (96, 48, 40))
    line = _one_line_error(["average", stage, "--epochs", "2", "--data", f"ferplus={other}"])
    assert "differ from those the stage trained on" in line
    bare = tmp_path / "bare"
    shutil.copytree(trained["stage"], bare, ignore=shutil.ignore_patterns("swa"))
    assert "--swa N" in _one_line_error(["average", str(bare), "--epochs", "2"])
    (bare / "run.json").write_text('{"status": "running"}')
    assert "not the record of a finished stage" in _one_line_error(["average", str(bare), "--epochs", "2"])


def test_out_is_written_whole_and_never_over_another_stage(trained, tmp_path, monkeypatch) -> None:
    """The output folder appears with its three files at once: a write killed midway leaves the earlier average as
    it was (no temp folder left); a finished stage's folder, or any folder with other files, is refused."""
    from fer_edge import atomic
    from fer_edge.train import average

    monkeypatch.setattr(average, "_scores", lambda model, val, test: {"val_accuracy": 0.5})
    out = tmp_path / "avg"
    average.average_stage(trained["stage"], [1], out)
    assert sorted(p.name for p in out.iterdir()) == ["average.json", "model.keras", "run.json"]
    (out / "extra.txt").write_text("from before")  # an earlier average is replaced whole
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real = atomic.write_json

    def killed(target, obj):
        if Path(target).name == "run.json":
            raise KeyboardInterrupt  # killed after model.keras and average.json were written
        return real(target, obj)

    monkeypatch.setattr(atomic, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        average.average_stage(trained["stage"], [2], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["avg"]
    monkeypatch.setattr(atomic, "write_json", real)
    average.average_stage(trained["stage"], [2], out)
    assert json.loads((out / "average.json").read_text())["counts"] == [2] and not (out / "extra.txt").exists()

    other = tmp_path / "other"  # another finished stage's folder
    other.mkdir()
    (other / "model.keras").write_bytes(b"the other stage's model")
    (other / "run.json").write_text('{"status": "finished"}')
    line = _one_line_error(["average", str(trained["stage"]), "--epochs", "1", "--out", str(other)])
    assert line.startswith(f"error: --out {other}: holds a training stage (run.json"), line
    assert (other / "model.keras").read_bytes() == b"the other stage's model"
    (other / "run.json").unlink()
    assert "not an earlier fer-edge average output" in _one_line_error(
        ["average", str(trained["stage"]), "--epochs", "1", "--out", str(other)])
    assert (other / "model.keras").read_bytes() == b"the other stage's model"
