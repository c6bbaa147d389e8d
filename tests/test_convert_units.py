"""fer_edge.convert pieces that need no model: the formats table, failure diagnosis, calibration sampling,
model sources, bundle companions and the report."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fer_edge.bundle import Artifact, InputSpec, Manifest, load_bundle, sha256_file
from fer_edge.convert import calibration as cal
from fer_edge.convert import diagnose
from fer_edge.convert.formats import FORMATS, ExportFormat, select
from fer_edge.convert.source import open_source
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.labels import EMOTIONS


def keys(entries: list[ExportFormat]) -> set[str]:
    return {e.key for e in entries}


def test_default_selection_is_fp32_of_every_installed_format() -> None:
    entries, _ = select(None)
    assert {e.precision for e in entries} == {"fp32"}
    assert {e.format for e in entries} == {"tflite", "onnx", "openvino"}  # all three toolchains installed here


def test_int8_switch_adds_int8_wherever_offered() -> None:
    entries, notes = select(None, groups=("int8",))
    assert keys(entries) >= {"tflite:int8", "tflite:int8_float_io", "onnx:int8", "openvino:int8"}
    assert not any(e.precision == "fp16" for e in entries)
    assert not any("int8_float_io" in n for n in notes)  # a switch is not an explicit request


def test_explicit_precision_nobody_offers_is_an_error() -> None:
    with pytest.raises(FerEdgeError, match="int8_float_io is not offered by onnx"):
        select(("onnx",), ("int8_float_io",))
    entries, notes = select(("tflite", "onnx"), ("dynamic",))
    assert "tflite:dynamic" in keys(entries) and any("onnx: has no dynamic" in n for n in notes)


def test_unknown_format_names_the_nearest() -> None:
    with pytest.raises(FerEdgeError, match="Did you mean 'tflite:fp32'"):
        select(("tflte",))


def test_missing_toolchain_is_reported_not_hidden() -> None:
    entry = replace(FORMATS.get("onnx:int8"), needs=("no_such_module_fer_edge",))
    assert "no_such_module_fer_edge" in entry.missing() and "pip install" in entry.missing()
    assert replace(entry, unsupported="no converter").missing() == "no converter"


def test_diagnose_names_the_op_and_a_fallback() -> None:
    flex = ("Some ops are not supported by the native TFLite runtime\nTF Select ops: Erf\nDetails: tf.Erf(...)")
    msg = diagnose.reason(RuntimeError("Could not translate MLIR"), flex, FORMATS.get("tflite:fp32"))
    assert "op Erf" in msg and "fallback: the onnx or openvino format" in msg
    msg = diagnose.reason(RuntimeError("x"), flex, FORMATS.get("tflite:int8"))  # no precision of tflite helps
    assert "fallback: the onnx or openvino format" in msg
    msg = diagnose.reason(ValueError("x"), "Unsupported ops: Counter({'StatelessRandomUniformV2': 1})",
                          FORMATS.get("onnx:fp32"))
    assert "StatelessRandomUniformV2" in msg and "tf2onnx" in msg
    msg = diagnose.reason(RuntimeError("Quantization not yet supported for op: 'SIN'"), "",
                          FORMATS.get("tflite:int8"))
    assert "op SIN has no int8 kernel" in msg and "tflite dynamic or fp16" in msg
    assert diagnose.reason(ValueError("boom\nmore"), "", FORMATS.get("onnx:int8")) == "ValueError: boom"


def test_quiet_captures_c_level_output(capfd: pytest.CaptureFixture[str]) -> None:
    with diagnose.quiet() as cap:
        os.write(1, b"from C stdout\n")
        os.write(2, b"from C stderr\n")
        print("from python")
    assert "from C stdout" in cap.text and "from C stderr" in cap.text and "from python" in cap.text
    out, err = capfd.readouterr()
    assert "from C" not in out + err and "from python" not in out


def faceset(labels: list[int]) -> cal.FaceSet:
    n = len(labels)
    return cal.FaceSet(np.zeros((n, 4, 4, 1), np.uint8), np.asarray(labels, np.int64), "x", "/x", "val", "p")


def test_calibration_sample_is_class_balanced_and_seeded() -> None:
    labels = [0] * 900 + [1] * 60 + [2] * 60 + [3] * 5 + [-1] * 100
    fs = faceset(labels)
    a, b = cal.balanced(fs, 80, seed=0), cal.balanced(fs, 80, seed=0)
    counts = np.bincount(a.labels[a.labels >= 0], minlength=4)
    assert len(a) == 80 and np.array_equal(a.labels, b.labels)
    assert counts[3] == 5 and counts[1] >= 20 and counts[2] >= 20 and counts[0] <= 40  # not 900:60:60:5
    assert len(cal.balanced(fs, 10_000)) == len(fs)


def test_labelled_subset_drops_unlabelled() -> None:
    fs = faceset([0, -1, 1, -1, 2])
    assert list(cal.labelled_subset(fs, None).labels) == [0, 1, 2]
    assert len(cal.labelled_subset(fs, 2)) == 2


def test_missing_calibration_data_says_how_to_pass_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cal, "default_data_paths", lambda run_root: [])
    with pytest.raises(FerEdgeError, match="pass --calib PATH"):
        cal.resolve(None, None, "calibration")
    with pytest.raises(FerEdgeError, match="no such calibration data folder"):
        cal.resolve("/nonexistent/fer-edge", None, "calibration")


def test_source_resolution(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model"):
        open_source(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelError, match="not a Keras model file"):
        open_source(tmp_path / "notes.txt")
    for stage in ("ferplus", "jaffe"):
        (tmp_path / "run" / stage).mkdir(parents=True)
        (tmp_path / "run" / stage / "model.keras").write_bytes(b"x")
    with pytest.raises(ModelError, match="stage folders with one"):
        open_source(tmp_path / "run")
    stage = tmp_path / "run" / "jaffe"
    (stage / "run.json").write_text(json.dumps({"classes": ["anger", "happy"], "backbone": "compact",
                                                "dataset": {"name": "jaffe", "root": "/data/jaffe"}}))
    src = open_source(stage)
    assert src.path == stage / "model.keras" and src.run_dir == stage
    assert src.classes(2) == ("anger", "happiness") and src.dataset_root == "/data/jaffe"
    with pytest.raises(ModelError, match="lists 2 classes but the model has 7"):
        src.classes(7)
    (tmp_path / "run" / "chain.json").write_text(json.dumps({"chain": ["ferplus", "jaffe"], "backbones": ["c"]}))
    (tmp_path / "run" / "c" / "ferplus").mkdir(parents=True)
    (tmp_path / "run" / "c" / "ferplus" / "model.keras").write_bytes(b"x")
    assert open_source(tmp_path / "run").path == tmp_path / "run" / "c" / "ferplus" / "model.keras"  # last stage
    (tmp_path / "run" / "c" / "jaffe").mkdir()
    (tmp_path / "run" / "c" / "jaffe" / "model.keras").write_bytes(b"x")
    assert open_source(tmp_path / "run" / "c").path == tmp_path / "run" / "c" / "jaffe" / "model.keras"
    bare = open_source(tmp_path / "run" / "ferplus" / "model.keras")
    assert bare.classes(8) == EMOTIONS
    with pytest.raises(ModelError, match="--classes"):
        bare.classes(7)


def _fake_bundle(tmp_path: Path) -> Path:
    (tmp_path / "m.xml").write_bytes(b"<xml/>")
    (tmp_path / "m.bin").write_bytes(b"\x00" * 64)
    comp = {"file": "m.bin", "sha256": sha256_file(tmp_path / "m.bin"), "bytes": 64}
    art = Artifact("openvino", "int8", "m.xml", sha256_file(tmp_path / "m.xml"), 6, companions=(comp,))
    m = Manifest("t", "tiny", EMOTIONS, InputSpec(48, 48), (art,))
    (tmp_path / "manifest.json").write_text(json.dumps(m.to_dict()))
    return tmp_path


def test_companion_files_are_verified_too(tmp_path: Path) -> None:
    b = load_bundle(_fake_bundle(tmp_path))
    art = b.manifest.artifacts[0]
    assert art.total_bytes == 70 and b.verify(art) == tmp_path / "m.xml"
    (tmp_path / "m.bin").write_bytes(b"\x01" + b"\x00" * 63)
    with pytest.raises(ModelError, match=r"m\.bin: sha256 does not match"):
        b.verify(art)
    (tmp_path / "m.bin").unlink()
    with pytest.raises(ModelError, match=r"m\.bin listed in the manifest is missing"):
        b.verify(art)


def test_report_table_and_determinism_summary() -> None:
    from fer_edge.convert.bundler import ConvertResult, Row
    from fer_edge.convert.report import determinism, markdown, table

    rows = (Row("tflite", "fp32", "passed", file="a", bytes=4_000_000, size_pct=100.0, accuracy=0.8, delta=0.0,
                agreement=1.0, export_s=1.0, deterministic=True),
            Row("tflite", "int8", "degraded", "accuracy drop 0.80 points exceeds --max-drop 0.5", file="b",
                bytes=1_000_000, size_pct=25.0, accuracy=0.792, delta=-0.8, agreement=0.97, export_s=2.0,
                deterministic=False, attempts=({"activations": "int8", "status": "degraded", "delta": -0.9},
                                               {"activations": "int16", "status": "degraded", "delta": -0.8})),
            Row("onnx", "fp32", "failed", "op Erf ...; fallback: x"))
    m = Manifest("t", "tiny", EMOTIONS, InputSpec(48, 48), evaluation={"n": 10, "dataset": "ferplus"})
    res = ConvertResult(Path("/b"), m, rows, 0.8, 3.0, (), 0.5)
    text = table(res)
    assert "25%" in text and "-0.80" in text and "tflite:int8: accuracy drop" in text
    assert determinism(rows) == {"tflite": "differs on repeat: int8",
                                 "onnx": "not checked (fer-edge convert --check-determinism)"}
    assert not res.ok and res.failed == [rows[2]] and res.over_budget == [rows[1]]
    md = markdown(res)
    assert "activations=int16: degraded -0.80" in md and "| tflite | int8 |" in md
