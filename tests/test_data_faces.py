"""Face crops for full photos: the largest detected face cut by a crop rule (default: squared and expanded), else a
centred square."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import make_jaffe

from fer_edge.data import faces, load_dataset
from fer_edge.preprocess import CropRule


@dataclass(frozen=True)
class FakeFace:
    box: tuple[int, int, int, int]
    score: float


class FakeDetector:
    name = "fake"

    def __init__(self, boxes: list[tuple[int, int, int, int]]) -> None:
        self.boxes = boxes
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> list[FakeFace]:
        self.seen.append(image.shape)
        return [FakeFace(b, 0.9) for b in self.boxes]


def photo() -> np.ndarray:
    """200x300 gray with a bright 60x80 'face' at x=150..210, y=40..120 and a small one at the top left."""
    img = np.zeros((200, 300), np.uint8)
    img[40:120, 150:210] = 200
    img[5:25, 5:25] = 100
    return img


def test_largest_face_expanded_to_a_square() -> None:
    det = FakeDetector([(5, 5, 20, 20), (150, 40, 60, 80)])
    box = CropRule(margin=0.1).box(faces.largest_face(photo(), det), photo().shape)
    assert box == (132, 32, 96, 96)  # 80 * 1.2 = 96, centred on (180, 80)
    assert det.seen == [(200, 300, 3)]  # gray photos go to the detector as BGR
    crop = faces.crop_face(photo(), size=48, detector=det, rule=CropRule(margin=0.1))
    assert crop.shape == (48, 48) and crop[24, 24] == 200


def test_the_cropper_cuts_by_its_rule() -> None:
    face, wide = (150, 40, 60, 80), CropRule(margin=0.25, square=False)
    assert faces.FaceCropper(size=24).rule == faces.CROP
    assert wide.box(face, photo().shape) == (135, 20, 90, 120)  # 60 and 80 px, each x 1.5
    cropper = faces.FaceCropper(size=24, rule=wide, detector=FakeDetector([face]))
    assert np.array_equal(cropper(photo()), faces.cut(photo(), (135, 20, 90, 120), 24))
    assert faces.crop_face(photo(), detector=FakeDetector([face]), rule=wide).shape == (120, 90)
    assert faces.crop_face(photo(), detector=FakeDetector([face])).shape == (93, 93)  # 80 * 1.16, square


def test_fallback_is_a_centred_square() -> None:
    crop = faces.crop_face(photo(), size=None, detector=None, fallback_scale=0.5)
    assert crop.shape == (100, 100)
    assert faces.centre_box((200, 300), 0.5) == (100, 50, 100, 100)
    assert faces.crop_face(photo(), size=32, detector=FakeDetector([])).shape == (32, 32)


def test_cropper_counts_fallbacks_for_problems() -> None:
    crop = faces.FaceCropper(size=24, detector=FakeDetector([]))
    crop(photo(), "a.png")
    crop(photo(), "b.png")
    assert crop.problems() == ("2 of 2 faces cropped as a centred square (no face found); first: a.png, b.png",)
    assert faces.FaceCropper(size=24, detector=FakeDetector([(150, 40, 60, 80)])).problems() == ()


def test_a_failing_detector_falls_back() -> None:
    class Broken:
        def detect(self, image: np.ndarray) -> list[FakeFace]:
            raise RuntimeError("model exploded")

    crop = faces.FaceCropper(size=24, detector=Broken())
    assert crop(photo(), "x.png").shape == (24, 24)
    assert crop.problems() == ("1 of 1 faces cropped as a centred square (face detector failed (RuntimeError: "
                               "model exploded)); first: x.png",)


def _fake_runtime(monkeypatch: pytest.MonkeyPatch, get_detector: object) -> None:
    module = types.ModuleType("fer_edge.runtime.detectors")
    module.get_detector = get_detector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fer_edge.runtime.detectors", module)


def test_runtime_detector_is_used_lazily(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    det = FakeDetector([(64, 64, 128, 128)])
    _fake_runtime(monkeypatch, lambda name: det if name == "auto" else None)
    ds = load_dataset(make_jaffe(tmp_path, subjects=("KA",)))
    assert len(det.seen) == 7 and ds.image_size == (96, 96)
    assert not any("centred square" in p for p in ds.problems)


def test_no_detector_means_centred_crops_listed_in_problems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def unavailable(name: str) -> object:
        raise RuntimeError("no face detector available (install a model)")

    _fake_runtime(monkeypatch, unavailable)
    ds = load_dataset(make_jaffe(tmp_path, subjects=("KA",)))
    assert ds.image_size == (96, 96)
    assert ds.problems[0].startswith("7 of 7 faces cropped as a centred square (face detector 'auto' unavailable")


def test_detector_choice_is_part_of_the_cache_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = make_jaffe(tmp_path, subjects=("KA",))
    _fake_runtime(monkeypatch, lambda name: FakeDetector([]))
    first = load_dataset(root)
    _fake_runtime(monkeypatch, lambda name: FakeDetector([(64, 64, 128, 128)]))
    assert load_dataset(root).problems == first.problems  # same detector name: a cache hit
    monkeypatch.setattr(FakeDetector, "name", "other")
    assert load_dataset(root).problems == ()  # another detector: read again
