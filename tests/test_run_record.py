"""The run record (fer_edge/run_record.py): training's run.json keeps every older key and adds the versioned,
schema-checked fields; older run.json files read as before; a record from disk is validated (one line per
problem, a newer record_version refused, no path tricks in the dataset root); conversion, distillation and explain
read classes and the input spec through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge import run_record
from fer_edge.convert.source import open_source
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.labels import EMOTIONS
from fer_edge.preprocess import DEFAULT_CROP, CropRule, InputSpec, model_input_spec


def _chain_run(root: str = "/data/ckplus") -> dict:
    """The keys a chain stage's run.json holds (fer_edge.train.outputs.run_record), abridged."""
    return {"status": "finished", "backbone": "compact", "stage": "ckplus", "classes": ["happiness", "surprise"],
            "input_size": 48, "protocol": "kfold", "plan": {"config": {"backbone": "compact", "epochs": 3}},
            "config": {"backbone": "compact", "epochs": 3, "chain": {"chain": ["ckplus"]}},
            "init": {"from": "none", "classes": None, "head": "new"},
            "data": {"name": "ckplus", "root": root, "faces": 60, "sha256": "ab" * 32},
            "summary": {"accuracy": 0.5}, "units": 4}


def _stage(tmp_path: Path, d: dict, name: str = "run.json") -> Path:
    folder = tmp_path / "stage"
    folder.mkdir(exist_ok=True)
    (folder / "model.keras").write_bytes(b"x")
    (folder / name).write_text(json.dumps(d))
    return folder


def test_training_writes_the_versioned_fields_and_keeps_every_older_key(tmp_path: Path) -> None:
    run = _chain_run()
    path = tmp_path / "run.json"
    record = run_record.write(path, run)
    d = json.loads(path.read_text())
    assert {k: d[k] for k in run} == run  # older readers (the chain's --resume, tests, scripts) see what they saw
    assert d["record_version"] == run_record.RECORD_VERSION == 1
    assert d["input"] == model_input_spec(48).to_dict() and d["crop"] == DEFAULT_CROP.to_dict()
    assert d["dataset"] == {"name": "ckplus", "root": "/data/ckplus", "sha256": "ab" * 32, "faces": 60}
    back = run_record.read(tmp_path)
    assert back == record and back.classes == ("happiness", "surprise") and back.input == InputSpec(48, 48)
    assert back.config["chain"] == {"chain": ["ckplus"]} and back.stage == "ckplus" and back.protocol == "kfold"


def test_a_relative_dataset_root_is_recorded_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    record = run_record.write(tmp_path / "run.json", _chain_run("data/../ckplus"))
    assert record.dataset.root == str(tmp_path / "ckplus")
    synthetic = {**_chain_run(), "data": {"name": "synthetic", "root": "", "faces": 8, "sha256": "cd" * 32}}
    assert run_record.write(tmp_path / "run.json", synthetic).dataset.root is None  # data given in memory


def test_older_run_json_reads_as_before(tmp_path: Path) -> None:
    older = {k: v for k, v in _chain_run("../shared/data/ckplus").items()}
    folder = _stage(tmp_path, older)
    record = run_record.read(folder / "model.keras")
    assert record.record_version == 0 and record.input is None and record.crop == DEFAULT_CROP
    assert record.classes == ("happiness", "surprise") and record.dataset.root == "../shared/data/ckplus"
    src = open_source(folder)
    assert src.dataset_root == "../shared/data/ckplus" and src.dataset_name == "ckplus" and src.crop == DEFAULT_CROP
    assert src.classes(2) == ("happiness", "surprise")
    # report.json of a stage without run.json: classes, no dataset (its "dataset" is a name, never a path)
    (folder / "run.json").unlink()
    (folder / "report.json").write_text(json.dumps({"classes": ["happy", "sad"], "dataset": "stage"}))
    src = open_source(folder)
    assert src.classes(2) == ("happiness", "sadness") and src.dataset_root is None


class _Model:
    def __init__(self, shape: tuple) -> None:
        self.input_shape = shape


def test_conversion_takes_the_records_input_spec_and_checks_it_fits(tmp_path: Path) -> None:
    d = {**_chain_run(), **run_record.for_stage(_chain_run()).to_dict()}
    d["input"] = {**d["input"], "mean": [0.5], "std": [0.25]}
    src = open_source(_stage(tmp_path, d))
    assert src.input_spec(_Model((None, 48, 48, 1))) == InputSpec(48, 48, mean=(0.5,), std=(0.25,))
    with pytest.raises(ModelError, match="says input 48x48x1 but the model takes 64x64x1"):
        src.input_spec(_Model((None, 64, 64, 1)))
    d["crop"] = {"margin": 0.2, "square": False}
    assert open_source(_stage(tmp_path, d)).crop == CropRule(0.2, False)
    # no record: what a fer-edge model takes, from the model's input shape
    (tmp_path / "stage" / "run.json").unlink()
    assert open_source(tmp_path / "stage").input_spec(_Model((None, 40, 40, 3))) == model_input_spec(40, 3)


def _versioned() -> dict:
    return {**_chain_run(), **run_record.for_stage(_chain_run()).to_dict()}


def _with(path: str, value: object) -> dict:
    d = _versioned()
    obj = d
    keys = path.split("/")
    for k in keys[:-1]:
        obj = obj[k]
    obj[keys[-1]] = value
    return d


BAD = {
    "newer": (_with("record_version", 2), "record_version 2 is newer"),
    "unknown-class": (_with("classes", ["happiness", "smug"]), "classes"),
    "one-class": (_with("classes", ["happiness"]), "classes"),
    "relative-root": (_with("dataset/root", "data/ckplus"), "absolute folder path"),
    "dotdot-root": (_with("dataset/root", "/data/../etc"), "absolute folder path"),
    "newline-root": (_with("dataset/root", "/data/ck\nplus"), "control characters"),
    "std-zero": (_with("input/std", [0]), "input/std"),
    "nan-scale": (_with("input/scale", float("nan")), "NaN or infinity"),
    "rgb-1-channel": (_with("input/color", "rgb"), "channel"),
    "mean-2-of-1": (_with("input/mean", [0, 0]), "input/mean"),
    "crop-margin": (_with("crop/margin", 3), "crop/margin"),
    "no-input": ({k: v for k, v in _versioned().items() if k != "input"}, "input"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_record_is_one_line(case: str, tmp_path: Path) -> None:
    d, why = BAD[case]
    folder = _stage(tmp_path, d)
    with pytest.raises(ModelError, match=why) as err:
        open_source(folder)
    assert "\n" not in str(err.value).replace("ck\nplus", "") and str(folder / "run.json") in str(err.value)


UNREADABLE = [b"{not json", b"\xff\xfe", b"[" * 100000 + b"]" * 100000, b"[1, 2]", b"{}"]


@pytest.mark.parametrize("data", UNREADABLE, ids=["not-json", "not-utf8", "nested-100000-deep", "list", "empty"])
def test_an_unreadable_older_record_falls_back_to_report_json_with_a_warning(
        data: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _stage(tmp_path, {})
    (folder / "run.json").write_bytes(data)
    assert open_source(folder).record is None and run_record.read(folder) is None  # older fer-edge ignored it
    (folder / "report.json").write_text(json.dumps({"classes": ["happy", "sad"]}))
    assert open_source(folder).classes(2) == ("happiness", "sadness")
    msgs = [r.getMessage() for r in caplog.records]  # one line, once (explain reads a record twice)
    assert len(msgs) == 1 and msgs[0].startswith(f"warning: {folder / 'run.json'}") and "\n" not in msgs[0]


def test_a_damaged_versioned_record_stays_an_error(tmp_path: Path) -> None:
    folder = _stage(tmp_path, {})
    (folder / "report.json").write_text(json.dumps({"classes": ["happy", "sad"]}))
    (folder / "run.json").write_text(json.dumps(_versioned())[:-40])  # cut short: names record_version
    with pytest.raises(ModelError, match="not valid JSON"):
        open_source(folder)
    with pytest.raises(ModelError, match="not a JSON object"):
        run_record.from_dict([1, 2], "run.json")


SMIRK = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "smirk"]


def test_classes_given_win_over_an_older_records_unknown_label(tmp_path: Path) -> None:
    folder = _stage(tmp_path, {"classes": SMIRK})
    src = open_source(folder)  # reads: the older record's classes are checked where they are used
    given = (*SMIRK[:7], "contempt")
    assert src.classes(8, given) == EMOTIONS
    with pytest.raises(FerEdgeError, match="unknown emotion label 'smirk'"):
        src.classes(8)
    assert run_record.input_spec_of(folder / "model.keras", 48) == InputSpec(48, 48)  # explain --classes reads it
    with pytest.raises(ModelError, match="unknown emotion label 'smirk'") as err:
        run_record.classes_of(folder / "model.keras", 8)
    assert str(folder / "model.keras") in str(err.value)
    with pytest.raises(ModelError, match="classes"):  # a versioned record keeps its strict check
        open_source(_stage(tmp_path, _with("classes", SMIRK)))


def test_an_older_records_dataset_string_that_is_an_absolute_folder_is_the_root(tmp_path: Path) -> None:
    data = tmp_path / "ferplus"
    data.mkdir()
    assert open_source(_stage(tmp_path, {"classes": ["happy", "sad"], "dataset": str(data)})).dataset_root == str(data)
    assert open_source(_stage(tmp_path, {"classes": ["happy", "sad"], "data": str(data)})).dataset_name == "ferplus"
    for bad in ["ferplus", str(tmp_path / "missing"), f"{tmp_path}/x/../ferplus", str(folder_file(tmp_path))]:
        assert open_source(_stage(tmp_path, {"classes": ["happy", "sad"], "dataset": bad})).dataset_root is None, bad


def folder_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file"


def test_an_older_records_bad_dataset_root_is_dropped_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = open_source(_stage(tmp_path, {"classes": ["happy", "sad"], "data": {"name": "x", "root": "/d/a\nb"}}))
    assert src.dataset_root is None and src.classes(2) == ("happiness", "sadness")
    assert any("control characters" in r.getMessage() for r in caplog.records)


def test_classes_and_input_spec_of_a_saved_model(tmp_path: Path) -> None:
    folder = _stage(tmp_path, _versioned())
    assert run_record.classes_of(folder / "model.keras", 2) == ("happiness", "surprise")
    assert run_record.classes_of(folder / "model.keras", 8) == EMOTIONS  # the record is for another head
    assert run_record.classes_of(folder / "model.keras", 5) is None
    assert run_record.input_spec_of(folder / "model.keras", 48) == InputSpec(48, 48)
    with pytest.raises(ModelError, match="run record says input 48x48x1"):
        run_record.input_spec_of(folder / "model.keras", 64)
    assert run_record.input_spec_of(tmp_path / "elsewhere" / "m.keras", 64) == InputSpec(64, 64)


def test_the_train_side_readers_go_through_the_record(tmp_path: Path) -> None:
    from fer_edge.train.surgery import class_names, model_classes

    folder = _stage(tmp_path, _versioned())
    assert class_names(folder / "model.keras", 2) == ("happiness", "surprise")
    assert model_classes(folder / "model.keras", 3) is None
    (folder / "run.json").write_text("{broken")
    assert model_classes(folder / "model.keras", 2) is None  # the chain asks; an unreadable record says nothing


def test_the_schema_document_and_the_record_agree() -> None:
    fields = set(run_record.SCHEMA["properties"])
    assert fields == set(run_record.for_stage(_chain_run()).to_dict())
    assert set(run_record.SCHEMA["required"]) == fields
    assert np.all([c in EMOTIONS for c in run_record.SCHEMA["properties"]["classes"]["items"]["enum"]])


def test_nan_in_the_older_keys_is_kept_but_never_in_the_versioned_fields(tmp_path: Path) -> None:
    run = {**_chain_run(), "summary": {"accuracy": 0.5, "macro_f1": float("nan")}}  # no support: NaN, as before
    run_record.write(tmp_path / "run.json", run)
    assert np.isnan(json.loads((tmp_path / "run.json").read_text())["summary"]["macro_f1"])
    bad = {**_versioned(), "config": {"lr": float("inf")}}
    with pytest.raises(ModelError, match="config/lr: NaN or infinity"):
        run_record.validate(bad)
