"""The contract from training to the device, end to end: a tiny real `fer-edge train` (1 epoch) -> `fer-edge convert`
-> the runtime's Classifier. The manifest's input spec and crop rule are the run record's, and the Classifier
reproduces the manifest's recorded accuracy on the same faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.datasets import make_bar_ferplus

pytestmark = pytest.mark.slow
SIZES = (400, 80, 160)  # FERPlus train, validation, test faces
LIMIT = 200  # training faces per split


def _cli(*args: str) -> str:
    from fer_edge.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_convert_classifier_round_trip(tmp_path: Path) -> None:
    from fer_edge import run_record
    from fer_edge.bundle import load_bundle
    from fer_edge.convert import calibration as cal
    from fer_edge.runtime.classifier import Classifier

    data = make_bar_ferplus(tmp_path / "ferplus", SIZES)
    run = tmp_path / "run"
    _cli("train", "--backbone", "compact", "--chain", "ferplus", "--data", f"ferplus={data}", "--out", str(run),
         "--epochs", "1", "--limit", str(LIMIT), "--augment", "none", "--distribute", "none")
    stage = run / "compact" / "ferplus"
    d = json.loads((stage / "run.json").read_text())
    run_record.validate(d)  # what training wrote is a valid versioned record
    record = run_record.read(stage)
    assert record.record_version == run_record.RECORD_VERSION and record.dataset.root == str(data.resolve())
    assert d["status"] == "finished" and d["summary"]["status"] == "finished"  # the older keys are all still there

    bundle_dir = tmp_path / "bundle"
    _cli("convert", str(run), "--out", str(bundle_dir), "--formats", "tflite")  # eval faces: the record's dataset
    b = load_bundle(bundle_dir)
    m = b.manifest
    assert m.input == record.input and m.crop == record.crop and m.classes == record.classes
    assert m.provenance["run"]["record_version"] == run_record.RECORD_VERSION
    assert m.evaluation["dataset"] == "ferplus" and m.evaluation["split"] == "test"

    # the same faces the converter scored: the dataset the record names, its test split, every labelled face
    ev = cal.labelled_subset(cal.load_faces(Path(record.dataset.root), m.classes, cal.EVAL_SPLITS, "evaluation"),
                             None, 0)
    assert len(ev) == m.evaluation["n"] == SIZES[2]
    (art,) = b.find("tflite", "fp32")
    clf = Classifier(b, backend="litert", format="tflite", precision="fp32")
    acc = float(np.mean(clf.predict(ev.faces).argmax(1) == ev.labels))
    # tolerance: one face of the evaluation set (the runtime scored the same faces through the same Classifier)
    assert acc == pytest.approx(art.accuracy, abs=1 / len(ev) + 1e-9)
    assert acc == pytest.approx(m.evaluation["keras_accuracy"], abs=1 / len(ev) + 1e-9)  # fp32 TFLite = Keras
