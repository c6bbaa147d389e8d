"""Eye alignment of the face crop (``CropRule.cut``): a turned real face comes out level, upright frames and faces
without keypoints (Haar, given boxes) are cut exactly as before, tracked frames keep the keypoints, the bundle's
rule and ``--align/--no-align`` decide, and the photo readers' crops (and cache) are unchanged unless asked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers.runtime import face_frame

from fer_edge.bundle import load_bundle
from fer_edge.data import faces as data_faces
from fer_edge.errors import ModelError
from fer_edge.preprocess import ALIGN_MIN_ROLL, DEFAULT_CROP, CropRule, eye_roll
from fer_edge.runtime.cli import run as run_command
from fer_edge.runtime.detectors import get_detector
from fer_edge.runtime.options import RunOptions
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.tracking import IoUTracker
from fer_edge.runtime.types import Face


def turned(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def redetected_roll(detector: object, crop: np.ndarray) -> float:
    """The eye roll BlazeFace finds in ``crop`` set in the middle of a plain canvas twice its size."""
    s = crop.shape[0]
    canvas = np.full((2 * s, 2 * s, *crop.shape[2:]), 120, np.uint8)
    canvas[s // 2:s // 2 + s, s // 2:s // 2 + s] = crop
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    found = detector.detect(canvas)
    assert len(found) == 1
    return eye_roll(found[0].keypoints)


class NoKeypoints:
    """A detector like Haar: boxes, no keypoints (here BlazeFace's boxes with the keypoints dropped)."""

    name = "haar-like"

    def __init__(self) -> None:
        self.inner = get_detector("blazeface")

    def detect(self, frame: np.ndarray) -> list[Face]:
        return [Face(f.box, f.score) for f in self.inner.detect(frame)]


@pytest.fixture(scope="module")
def blazeface() -> object:
    return get_detector("blazeface")


def test_eye_roll_reads_the_eye_line_and_needs_two_points() -> None:
    assert eye_roll(((10, 20), (30, 20))) == 0.0
    assert eye_roll(((10, 20), (30, 40))) == pytest.approx(45.0)      # left eye lower: turned clockwise
    assert eye_roll(((10, 20), (30, 0), (0, 0))) == pytest.approx(-45.0)
    assert eye_roll(()) is None and eye_roll(((1, 1),)) is None and eye_roll(((1, 1), (1, 1))) is None
    assert eye_roll(((float("nan"), 1), (2, 2))) is None


@pytest.mark.parametrize("degrees", [-25, 20])
def test_a_turned_real_face_is_cut_with_level_eyes(dev_bundle: Path, blazeface: object, degrees: float) -> None:
    frame = turned(face_frame(), degrees)  # the demo sample's faces, turned
    pipe = Pipeline.from_bundle(dev_bundle, detector="blazeface", align=True)
    found = blazeface.detect(frame)
    assert found and all(abs(eye_roll(f.keypoints) + degrees) < 8 for f in found)  # the tilt is really there
    aligned = pipe.crops(frame, found)
    plain = Pipeline.from_bundle(dev_bundle, detector="blazeface", align=False).crops(frame, found)
    for a, p in zip(aligned, plain, strict=True):
        assert abs(redetected_roll(blazeface, a)) < 5
        assert abs(redetected_roll(blazeface, p)) > 12
        assert a.shape == p.shape or a.shape[0] > p.shape[0]  # grown by 1/cos(roll), never smaller


def test_alignment_changes_nothing_on_upright_frames(dev_bundle: Path) -> None:
    frame = face_frame()
    results = {}
    for align in (False, True):
        pipe = Pipeline.from_bundle(dev_bundle, detector="blazeface", align=align)
        results[align] = [pipe.process(frame) for _ in range(3)]
    upright = 0
    for off, on in zip(results[False], results[True], strict=True):
        assert [(e.face, e.track) for e in off.faces] == [(e.face, e.track) for e in on.faces]
        for a, b in zip(off.faces, on.faces, strict=True):
            if abs(eye_roll(a.face.keypoints)) < ALIGN_MIN_ROLL:
                upright += 1
                assert (a.label, a.probabilities) == (b.label, b.probabilities)
    assert upright >= 2


def test_faces_without_keypoints_are_cut_plain(dev_bundle: Path) -> None:
    frame = turned(face_frame(), 20)
    pipe = Pipeline(Pipeline.from_bundle(dev_bundle, detector=None).classifier, NoKeypoints())
    assert pipe.crop.align
    result = pipe.process(frame)
    assert result.faces
    crops = pipe.crops(frame, [e.face for e in result.faces])
    assert all(np.shares_memory(c, frame) for c in crops)  # views: nothing rotated
    off = Pipeline(pipe.classifier, NoKeypoints(), align=False).process(frame)
    assert [e.probabilities for e in off.faces] == [e.probabilities for e in result.faces]
    given = Pipeline.from_bundle(dev_bundle, detector=None).process(frame, faces=[Face((100, 100, 150, 150), 1.0)])
    assert len(given.faces) == 1


def test_the_real_haar_detector_is_unaffected(dev_bundle: Path) -> None:
    try:
        haar = get_detector("haar")
    except Exception as exc:  # OpenCV 5.x wheels carry no cascades
        pytest.skip(f"no Haar detector here ({exc})")
    frame = face_frame()
    on = Pipeline(Pipeline.from_bundle(dev_bundle, detector=None).classifier, haar, align=True).process(frame)
    off = Pipeline(Pipeline.from_bundle(dev_bundle, detector=None).classifier, haar, align=False).process(frame)
    assert [e.probabilities for e in on.faces] == [e.probabilities for e in off.faces]


def test_tracked_frames_move_the_keypoints_with_the_box() -> None:
    tracker = IoUTracker()
    face = Face((100, 100, 80, 80), 0.9, ((120.0, 130.0), (160.0, 140.0)))
    tracker.update([face], 0)
    tracker.update([Face((110, 104, 80, 80), 0.9, ((130.0, 134.0), (170.0, 144.0)))], 1)
    (_, moved), = tracker.predict(2)
    dx, dy = moved.box[0] - 110, moved.box[1] - 104
    assert (dx, dy) != (0, 0)
    np.testing.assert_allclose(moved.keypoints, ((130 + dx, 134 + dy), (170 + dx, 144 + dy)), atol=0.51)
    assert eye_roll(moved.keypoints) == pytest.approx(eye_roll(face.keypoints), abs=1.5)


def test_the_bundle_rule_and_the_option_decide(dev_bundle: Path, tmp_path: Path) -> None:
    assert DEFAULT_CROP.align and DEFAULT_CROP.to_dict() == {"margin": 0.08, "square": True}  # no new key by default
    assert CropRule.from_dict({"margin": 0.1, "square": True}).align  # rules from before the field: aligned
    off = CropRule(align=False)
    assert off.to_dict() == {"margin": 0.08, "square": True, "align": False}
    assert CropRule.from_dict(off.to_dict()) == off
    bundle = tmp_path / "b"
    shutil.copytree(dev_bundle, bundle)
    m = json.loads((bundle / "manifest.json").read_text())
    m["schema_version"], m["crop"] = 2, {"margin": 0.08, "square": True, "align": False}
    (bundle / "manifest.json").write_text(json.dumps(m))
    assert load_bundle(bundle).manifest.crop.align is False
    assert Pipeline.from_bundle(bundle, detector=None).crop.align is False
    assert Pipeline.from_bundle(bundle, detector=None, align=True).crop.align is True
    assert Pipeline.from_bundle(dev_bundle, detector=None).crop.align is True
    m["crop"]["align"] = "yes"
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="crop/align: 'yes' is not of type 'boolean'"):
        load_bundle(bundle)
    parsed = run_command.make_context("run", ["--no-align", "--source", "x.jpg"]).params
    kwargs = RunOptions(**{k: v for k, v in parsed.items() if k not in ("camera", "source", "size")}).pipeline_kwargs()
    assert kwargs["align"] is False
    assert Pipeline.from_bundle(dev_bundle, **(kwargs | {"detector": None})).crop.align is False


def test_fer_edge_run_aligns_a_tilted_photo_unless_told_not_to(dev_bundle: Path, tmp_path: Path) -> None:
    image = tmp_path / "tilted.png"
    cv2.imwrite(str(image), turned(face_frame(), 20))
    faces = {}
    for flag in ("--align", "--no-align", None):
        out = tmp_path / f"{flag}.jsonl"
        args = ["--model", str(dev_bundle), "--source", str(image), "--detector", "blazeface", "--json", str(out)]
        result = CliRunner().invoke(run_command, args + ([flag] if flag else []))
        assert result.exit_code == 0, result.output
        faces[flag] = [f["probabilities"] for line in out.read_text().splitlines() for f in json.loads(line)["faces"]]
    assert faces["--align"] and faces[None] == faces["--align"] != faces["--no-align"]


def test_photo_crops_and_cache_salt_are_unchanged_unless_aligning(jaffe_dir: Path, blazeface: object,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    photo = cv2.imread(str(sorted(jaffe_dir.glob("*.tiff"))[0]), cv2.IMREAD_GRAYSCALE)
    tilted = turned(photo, 20)
    default = data_faces.FaceCropper(size=96, detector=blazeface)
    box = data_faces.largest_face(tilted, blazeface)
    assert not default.align
    np.testing.assert_array_equal(default(tilted), data_faces.cut(tilted, DEFAULT_CROP.box(box, tilted.shape), 96))
    aligned = data_faces.FaceCropper(size=96, detector=blazeface, align=True)(tilted)
    assert abs(redetected_roll(blazeface, aligned)) < 5 and abs(redetected_roll(blazeface, default(tilted))) > 12
    assert data_faces.photo_salt(blazeface) == data_faces.detector_tag(blazeface)  # the JAFFE/CK+ caches stay valid
    monkeypatch.setattr(data_faces, "ALIGN_PHOTOS", True)
    assert data_faces.photo_salt(blazeface) != data_faces.detector_tag(blazeface)
    assert data_faces.FaceCropper.auto(96).align


def test_the_photo_accuracy_script_counts_what_alignment_changes(jaffe_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "jaffe"
    data.mkdir()
    for f in sorted(jaffe_dir.glob("*.tiff"))[::50]:  # 5 photos, 5 subjects
        shutil.copy(f, data / f.name)
    script = Path(__file__).resolve().parents[1] / "scripts" / "photo_accuracy.py"
    res = subprocess.run([sys.executable, str(script), "--data", str(data), "--tilts=-20,20", "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "jaffe.json").read_text())
    assert doc["photos"] == 5 and doc["tilts_degrees"] == [-20.0, 20.0]
    tilted = doc["tilted"]
    assert tilted["detector_crop"]["found"] == tilted["eye_aligned"]["found"] == 10
    assert tilted["eye_aligned"]["changed_vs_plain"] >= tilted["eye_aligned"]["won"] + tilted["eye_aligned"]["lost"]
    assert doc["upright"]["eye_aligned"]["changed_vs_plain"] <= doc["upright_eye_roll_degrees"]["at_least_min_roll"]
    assert 0 <= doc["dataset_crop"]["accuracy"] <= 1 and set(doc["min_roll_sweep"]) >= {"0", "5"}
