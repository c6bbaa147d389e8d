"""One input spec and one crop rule (fer_edge/preprocess.py): training's model input is the runtime's, bit for bit;
the data layer, the runtime geometry and the pipeline crop by one rule; manifest schema 2 carries the rule, schema 1
reads with the default, and a pipeline crops by its bundle's rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge import bundle
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.preprocess import DEFAULT_CROP, CropRule, InputSpec, model_input_spec, to_model_input


def _old_trainer_input(images: np.ndarray, size: int) -> np.ndarray:
    """What fer_edge.train.trainer.to_model_input computed before there was one input spec."""
    out = np.empty((len(images), size, size, 1), dtype=np.float32)
    for i, img in enumerate(images):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.shape[-1] == 3 else img[..., 0]
        if g.shape != (size, size):
            interp = cv2.INTER_AREA if g.shape[0] > size else cv2.INTER_LINEAR
            g = cv2.resize(g, (size, size), interpolation=interp)
        out[i, ..., 0] = g / 255.0
    return out


@pytest.mark.parametrize(("shape", "size"), [((5, 48, 48, 1), 48), ((4, 64, 64, 3), 48), ((3, 40, 40, 1), 64)])
def test_training_input_is_the_spec_bit_for_bit(shape: tuple[int, ...], size: int) -> None:
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    got = to_model_input(images, size)
    assert got.dtype == np.float32 and got.shape == (shape[0], size, size, 1)
    assert np.array_equal(got, _old_trainer_input(images, size))
    assert np.array_equal(got, model_input_spec(size).prepare(images))  # the runtime's Classifier calls prepare
    from fer_edge.train.trainer import to_model_input as from_trainer

    assert from_trainer is to_model_input  # still importable where older callers look


def test_input_spec_dict_round_trip() -> None:
    spec = InputSpec(64, 64, 3, "rgb", 1 / 127.5, (1.0, 1.0, 1.0), (1.0,))
    assert InputSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert model_input_spec(48) == InputSpec(48, 48)  # the manifest defaults are what fer-edge models take


BOXES = [(10, 20, 50, 60), (0, 0, 300, 200), (600, 400, 60, 70), (-5, -5, 3, 3), (100, 100, 1, 1)]


def test_one_crop_rule_for_data_runtime_and_pipeline() -> None:
    from fer_edge.data import faces
    from fer_edge.runtime import geometry, pipeline

    assert faces.CROP == faces.FaceCropper(size=48).rule == DEFAULT_CROP and DEFAULT_CROP.margin == 0.08
    # one box rule: no second square_box or margin constant to drift from it
    assert not hasattr(faces, "square_box") and not hasattr(geometry, "square_box")
    assert not hasattr(faces, "MARGIN") and not hasattr(pipeline, "CROP_MARGIN")
    for box in BOXES:
        want = DEFAULT_CROP.box(box, (480, 640))
        assert faces.crop_face(np.zeros((480, 640), np.uint8), detector=_Boxes([box])).shape == (want[3], want[2])
        x, y, w, h = want
        assert w == h and 0 <= x <= 640 - w and 0 <= y <= 480 - h
    assert DEFAULT_CROP.box((250, 150, 60, 60), (200, 300)) == (230, 130, 70, 70)
    assert DEFAULT_CROP.box((0, 0, 300, 200), (200, 300)) == (50, 0, 200, 200)  # shrunk to fit, centred


class _Boxes:
    def __init__(self, boxes: list[tuple[int, int, int, int]]) -> None:
        self.boxes = boxes

    def detect(self, image: np.ndarray) -> list[object]:
        from fer_edge.runtime.types import Face

        return [Face(b, 0.9) for b in self.boxes]


def test_a_non_square_rule_grows_each_side_by_its_own_length() -> None:
    rule = CropRule(margin=0.25, square=False)
    assert rule.box((100, 100, 40, 80), (480, 640)) == (90, 80, 60, 120)  # 40 and 80 px, each x 1.5
    assert rule.box((0, 0, 600, 40), (480, 640)) == (0, 0, 640, 60)  # clipped to the image width, shifted in


@pytest.mark.parametrize("margin", [-0.1, 1.5, float("nan"), "0.1"])
def test_a_bad_margin_is_refused(margin: object) -> None:
    with pytest.raises(FerEdgeError, match="crop margin"):
        CropRule(margin=margin)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- the manifest field


def _bundle_copy(dest: Path, crop: dict | None) -> Path:
    """The shipped bundle's tflite artifacts with a schema 2 manifest holding ``crop``, or (None) the schema 1
    manifest fer-edge wrote before the crop rule existed: the same without ``crop``."""
    src = bundle.default_bundle_path()
    d = json.loads((src / bundle.MANIFEST).read_text())
    d["artifacts"] = [a for a in d["artifacts"] if a["format"] == "tflite"]
    dest.mkdir()
    for a in d["artifacts"]:
        shutil.copyfile(src / a["file"], dest / a["file"])
    d.pop("crop", None)
    if crop is None:
        d["schema_version"] = 1
    else:
        d.update(schema_version=2, crop=crop)
    (dest / bundle.MANIFEST).write_text(json.dumps(d))
    return dest


def test_v1_manifests_read_with_the_default_crop_and_write_as_v2(tmp_path: Path) -> None:
    b = bundle.load_bundle(_bundle_copy(tmp_path / "v1", None))
    assert json.loads((tmp_path / "v1" / bundle.MANIFEST).read_text())["schema_version"] == 1
    assert b.manifest.crop == DEFAULT_CROP
    d = b.manifest.to_dict()
    assert d["schema_version"] == bundle.SCHEMA_VERSION == 2 and d["crop"] == {"margin": 0.08, "square": True}
    bundle.validate(d)
    assert bundle.Manifest.from_dict(json.loads(json.dumps(d))) == b.manifest


def test_a_v1_manifest_crop_key_meant_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _bundle_copy(tmp_path / "b", None)
    d = json.loads((folder / bundle.MANIFEST).read_text())
    d["crop"] = {"margin": 0.5, "square": False}
    (folder / bundle.MANIFEST).write_text(json.dumps(d))
    assert bundle.load_bundle(folder).manifest.crop == DEFAULT_CROP
    assert "ignoring key crop" in caplog.text


def test_v2_crop_is_validated(tmp_path: Path) -> None:
    for crop, why in (({"margin": 2, "square": True}, "crop/margin"), ({"margin": 0.1}, "square"),
                      ("wide", "crop")):
        folder = _bundle_copy(tmp_path / f"b{len(list(tmp_path.iterdir()))}", crop)  # type: ignore[arg-type]
        with pytest.raises(ModelError, match=why):
            bundle.load_bundle(folder)


def test_the_pipeline_crops_by_its_bundles_rule(tmp_path: Path) -> None:
    from fer_edge.runtime.pipeline import Pipeline
    from fer_edge.runtime.types import Face

    wide = _bundle_copy(tmp_path / "wide", {"margin": 0.3, "square": True, "future_key": 1})
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    faces = [Face((200, 150, 80, 100), 0.9)]
    pipe = Pipeline.from_bundle(wide, backend="litert", detector=None)
    assert pipe.crop == CropRule(0.3)
    assert pipe.crops(frame, faces)[0].shape[:2] == (160, 160)  # 100 * (1 + 2 * 0.3)
    default = Pipeline.from_bundle(bundle.default_bundle_path(), backend="litert", detector=None)
    assert default.crops(frame, faces)[0].shape[:2] == (116, 116)  # 100 * 1.16, the default rule
    override = Pipeline.from_bundle(wide, backend="litert", detector=None, crop_margin=0.0)
    assert override.crops(frame, faces)[0].shape[:2] == (100, 100)
    x, y, w, h = CropRule(0.3).box(faces[0].box, frame.shape)
    np.testing.assert_allclose(pipe.process(frame, faces=faces).faces[0].probabilities["neutral"],
                               pipe.classifier.predict([frame[y:y + h, x:x + w]], bgr=True)[0][0], atol=1e-6)
