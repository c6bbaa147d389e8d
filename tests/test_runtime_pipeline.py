"""Pipeline: parity with Classifier.predict, known boxes, tracking, smoothing, outputs (video, JSON lines,
redaction), run() on files, folders and images, and the bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from helpers.runtime import face_frame, sample_clip

from fer_edge.errors import BackendUnavailable, FerEdgeError, ModelError
from fer_edge.runtime.backends import BACKENDS
from fer_edge.runtime.classifier import Classifier
from fer_edge.runtime.outputs import FRAME_SCHEMA
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.run import measure, run
from fer_edge.runtime.smoothing import Smoother
from fer_edge.runtime.tracking import IoUTracker
from fer_edge.runtime.types import Face


def _known(n: int = 3) -> list[Face]:
    return [Face((40 + 200 * i, 150, 120, 120), 1.0) for i in range(n)]


def test_probabilities_equal_classifier_predict_on_the_same_crops(dev_bundle: Path) -> None:
    frame = face_frame()
    rng = np.random.default_rng(0)
    frame = np.clip(frame.astype(np.int16) + rng.integers(-60, 60, frame.shape), 0, 255).astype(np.uint8)
    pipe = Pipeline.from_bundle(dev_bundle, detector=None, smooth=0.0)
    faces = _known()
    result = pipe.process(frame, faces=faces)
    crops = pipe.crops(frame, faces)
    ref = Classifier(dev_bundle).predict(crops, bgr=True)
    got = np.array([[e.probabilities[c] for c in pipe.classes] for e in result.faces])
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    assert [e.label for e in result.faces] == [pipe.classes[int(i)] for i in ref.argmax(1)]
    assert all(e.confidence == pytest.approx(float(r.max())) for e, r in zip(result.faces, ref, strict=True))
    # batched per frame == one face at a time
    one = np.concatenate([Classifier(dev_bundle).predict([c], bgr=True) for c in crops])
    np.testing.assert_allclose(one, ref, atol=1e-6)



def test_flip_tta_averages_each_face_with_its_mirror_image(dev_bundle: Path) -> None:
    rng = np.random.default_rng(1)
    faces = [rng.integers(0, 256, (60, 60), dtype=np.uint8) for _ in range(3)]
    plain = Classifier(dev_bundle)
    tta = Classifier(dev_bundle, flip_tta=True)
    want = (plain.predict(faces) + plain.predict([f[:, ::-1] for f in faces])) / 2
    np.testing.assert_allclose(tta.predict(faces), want, atol=1e-6)
    assert not np.allclose(plain.predict(faces), want, atol=1e-4)  # random faces are not symmetric
    assert "flip TTA" in tta.describe()
    pipe = Pipeline.from_bundle(dev_bundle, detector=None, flip_tta=True)
    frame = face_frame()
    got = pipe.process(frame, faces=_known(2)).faces
    ref = tta.predict(pipe.crops(frame, _known(2)), bgr=True)
    np.testing.assert_allclose([[e.probabilities[c] for c in pipe.classes] for e in got], ref, atol=1e-6)

def test_crop_rule_matches_the_data_layer(dev_bundle: Path) -> None:
    data_faces = pytest.importorskip("fer_edge.data.faces")
    pipe = Pipeline.from_bundle(dev_bundle, smooth=0.0)
    assert pipe.crop == data_faces.CROP  # the bundle's rule is the one its training photos were cut by
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for box in [(10, 20, 50, 60), (0, 0, 300, 200), (600, 400, 60, 70)]:
        x, y, w, h = data_faces.CROP.box(box, frame.shape)
        assert np.array_equal(pipe.crops(frame, [Face(box, 1.0)])[0], frame[y:y + h, x:x + w])


def test_no_face_frame_and_bad_frames(dev_bundle: Path) -> None:
    pipe = Pipeline.from_bundle(dev_bundle, smooth=0.0)
    r = pipe.process(np.full((480, 640, 3), 127, np.uint8))
    assert r.faces == () and r.index == 0
    with pytest.raises(FerEdgeError, match="uint8"):
        pipe.process(np.zeros((10, 10, 3), np.float32))
    r = pipe.process(np.full((480, 640), 127, np.uint8), faces=_known(1))  # gray frames work too
    assert len(r.faces) == 1


def test_detect_every_n_frames_keeps_track_ids(dev_bundle: Path) -> None:
    calls = []

    class Fixed:
        name = "fixed"

        def detect(self, frame: np.ndarray) -> list[Face]:
            calls.append(1)
            dx = 4 * len(calls)
            return [Face((50 + dx, 100, 120, 120), 0.9), Face((400 + dx, 120, 110, 110), 0.8)]

    pipe = Pipeline(Classifier(dev_bundle), Fixed(), every=3)
    frame = face_frame()
    ids = [tuple(e.track for e in pipe.process(frame).faces) for _ in range(9)]
    assert len(calls) == 3
    assert set(ids) == {(1, 2)}


def test_tracker_matches_moves_and_forgets() -> None:
    tr = IoUTracker(max_age=3)
    a = tr.update([Face((0, 0, 50, 50), 1.0), Face((200, 0, 50, 50), 1.0)], 0)
    b = tr.update([Face((210, 0, 50, 50), 1.0), Face((10, 0, 50, 50), 1.0)], 1)
    assert [t for t, _ in a] == [1, 2] and [t for t, _ in b] == [2, 1]
    moved = dict(tr.predict(2))
    assert moved[1].box[0] > 10  # moving right keeps moving right between detections
    (only,) = tr.update([Face((222, 0, 50, 50), 1.0)], 3)  # face 1 missed by the detector
    assert only[0] == 2 and [t for t, _ in tr.predict(4)] == [2]  # not drawn between detections either
    assert [t for t, _ in tr.update([Face((40, 0, 50, 50), 1.0)], 4)] == [1]  # found again: its old id
    tr.update([], 8)
    assert tr.tracks == {} and sorted(tr.pop_removed()) == [1, 2]
    (new,) = tr.update([Face((0, 0, 50, 50), 1.0)], 9)
    assert new[0] == 3  # ids are never reused


def test_smoother_ema_and_hysteresis() -> None:
    s = Smoother(alpha=0.5, margin=0.2)
    p, k = s.update(1, np.array([0.8, 0.2]))
    assert k == 0
    p, k = s.update(1, np.array([0.3, 0.7]))  # EMA 0.55 / 0.45: no switch
    assert np.allclose(p, [0.55, 0.45]) and k == 0
    p, k = s.update(1, np.array([0.2, 0.8]))  # 0.375 / 0.625: leads by 0.25 > 0.2 -> switch
    assert k == 1
    _, k2 = s.update(2, np.array([0.9, 0.1]))  # per track
    assert k2 == 0
    s.forget([1])
    assert 1 not in s.states
    raw = Smoother(alpha=0.0)
    assert raw.update(1, np.array([0.4, 0.6]))[1] == 1 and raw.update(1, np.array([0.6, 0.4]))[1] == 0
    with pytest.raises(ValueError):
        Smoother(alpha=1.0)


def test_run_video_writes_valid_json_lines_and_video(dev_bundle: Path, tmp_path: Path) -> None:
    out_json, out_mp4 = tmp_path / "r.jsonl", tmp_path / "o.mp4"
    summary = run(str(sample_clip()), bundle=dev_bundle, json_out=out_json, save=out_mp4, max_frames=12, smooth=0.3)
    assert summary.frames == 12 and summary.faces > 0 and summary.stopped_by == "--max-frames 12"
    lines = [json.loads(x) for x in out_json.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(12))
    for rec in lines:
        jsonschema.validate(rec, FRAME_SCHEMA)
        for f in rec["faces"]:
            assert f["label"] in f["probabilities"] and sum(f["probabilities"].values()) == pytest.approx(1, abs=0.02)
    cap = cv2.VideoCapture(str(out_mp4))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "r.jsonl"]  # no temp files left
    assert set(summary.stages_ms) >= {"decode", "detect", "classify", "draw", "output", "total"}
    assert "FPS" in summary.format() and "decode" in summary.format()


def test_redact_blurs_faces_in_saved_frames(dev_bundle: Path, tmp_path: Path) -> None:
    frame = face_frame()
    cv2.imwrite(str(tmp_path / "in.png"), frame)
    box = (60, 150, 140, 140)

    def known(i: int, name: str) -> list[Face]:
        return [Face(box, 1.0)]

    run(str(tmp_path / "in.png"), bundle=dev_bundle, detector=None, known_faces=known, save=tmp_path / "plain")
    run(str(tmp_path / "in.png"), bundle=dev_bundle, detector=None, known_faces=known, save=tmp_path / "red",
        redact=True)
    plain = cv2.imread(str(tmp_path / "plain" / "in.png"))  # a named image keeps its name and format
    red = cv2.imread(str(tmp_path / "red" / "in.png"))
    x, y, w, h = box
    inner = (slice(y + 10, y + h - 10), slice(x + 10, x + w - 10))
    detail = [cv2.Laplacian(cv2.cvtColor(im[inner], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var() for im in (plain, red)]
    assert detail[1] < 0.05 * detail[0], detail  # no facial detail left
    assert np.abs(red[:100, 300:].astype(int) - plain[:100, 300:].astype(int)).mean() < 3  # elsewhere unchanged


def test_folder_images_are_independent_and_named(dev_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i}.png"), face_frame())
    (src / "broken.jpg").write_bytes(b"nope")
    out = tmp_path / "r.jsonl"
    s = run(str(src), bundle=dev_bundle, detector=None, known_faces=lambda i, n: _known(2), json_out=out)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["name"] for r in recs] == ["0.png", "1.png", "2.png"] and s.skipped == 1
    assert all([f["track"] for f in r["faces"]] == [1, 2] for r in recs)  # reset per image


def test_bundle_without_artifact_for_backend_names_what_it_has(dev_bundle: Path) -> None:
    if not BACKENDS.get("onnxruntime").is_available():
        pytest.skip("onnxruntime not installed")
    with pytest.raises(ModelError, match=r"no artifact for backend onnxruntime; the bundle has tflite:fp32, tfli"):
        run(str(sample_clip()), bundle=dev_bundle, backend="onnxruntime", max_frames=1)


def test_backend_not_installed_says_what_to_pip_install(dev_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BACKENDS.get("openvino"), "is_available", classmethod(lambda cls: False))
    with pytest.raises(BackendUnavailable, match="pip install openvino"):
        Pipeline.from_bundle(dev_bundle, backend="openvino")


def test_missing_bundle_and_default_bundle_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="not a fer-edge bundle"):
        Pipeline.from_bundle(tmp_path)
    import fer_edge.runtime.pipeline as pl

    monkeypatch.setattr(pl, "default_bundle_path", lambda: tmp_path / "nothing")
    with pytest.raises(ModelError, match="default model is not installed"):
        Pipeline.from_bundle()


def test_option_errors(dev_bundle: Path) -> None:
    with pytest.raises(FerEdgeError, match="exactly one"):
        run(bundle=dev_bundle)
    with pytest.raises(FerEdgeError, match="exactly one"):
        run("x.mp4", camera=0, bundle=dev_bundle)
    with pytest.raises(FerEdgeError, match="--smooth"):
        Pipeline.from_bundle(dev_bundle, smooth=1.5)
    with pytest.raises(FerEdgeError, match="--save"):
        run(str(sample_clip()), bundle=dev_bundle, save="out.txt", max_frames=1)


def test_measure_reports_fps_and_stages(dev_bundle: Path) -> None:
    m = measure(str(sample_clip()), dev_bundle, max_frames=15, warmup=3, threads=1)
    assert m["frames"] == 15 and m["fps"] > 0
    assert m["stages_ms"]["classify"]["n"] == 12
    assert m["stages_ms"]["total"]["p50"] > 0


@pytest.mark.parametrize("overlap", [False, True])
def test_show_window_gets_annotated_frames_and_q_stops_cleanly(dev_bundle: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, overlap: bool) -> None:
    """The --show path with OpenCV's window calls stood in for (no display here): every frame is shown with its
    overlay, q on the 4th frame stops the run, the saved video is finalized and the window closed. Overlapped,
    the 5th frame was already read and detected when q came: it is finished too, not lost."""
    import fer_edge.runtime.run as run_mod

    shown: list[np.ndarray] = []
    calls: list[str] = []
    monkeypatch.setattr(run_mod, "check_gui", lambda: calls.append("check"))
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: ord("q") if len(shown) == 4 else -1)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: calls.append("closed"))
    out = tmp_path / "o.mp4"
    summary = run(str(sample_clip()), bundle=dev_bundle, show=True, save=out, max_frames=50, overlap=overlap)
    n = 5 if overlap else 4
    assert summary.frames == n and summary.stopped_by == "window closed (q)"
    assert calls == ["check", "closed"]
    raw = cv2.VideoCapture(str(sample_clip())).read()[1]
    assert len(shown) == n and shown[0].shape == raw.shape and np.abs(shown[0].astype(int) - raw).mean() > 0.5
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()


def test_overlapped_stream_gives_exactly_the_sequential_results(dev_bundle: Path) -> None:
    """Classifying on a worker thread while the next frame is detected changes nothing but the speed: same boxes,
    track ids, labels and smoothed probabilities, frame by frame (tracking every 2nd frame, smoothing on)."""
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = [cap.read()[1] for _ in range(60)]
    cap.release()

    def results(overlap: bool) -> list:
        pipe = Pipeline.from_bundle(dev_bundle, every=2, smooth=0.6)
        items = ((i, f, i, i / 25, None) for i, f in enumerate(frames))
        return [(tag, r.index, [(e.face.box, e.track, e.label, e.probabilities) for e in r.faces])
                for tag, r in pipe.stream(items, overlap=overlap)]

    seq, ovl = results(False), results(True)
    assert [t for t, *_ in ovl] == list(range(60)) and sum(len(r[2]) for r in seq) > 60
    assert ovl == seq


def test_a_stop_request_from_another_thread_finalizes_the_outputs(dev_bundle: Path, tmp_path: Path) -> None:
    """run(stop=StopRequest()) is how a caller that is not the main thread (a web server) stops a run: the frame in
    hand finishes, outputs are finalized; a run stopped before its first frame replaces nothing."""
    import threading

    from fer_edge.runtime.lifecycle import StopRequest

    video, jsonl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    stop = StopRequest()

    def on_result(frame: object, result: object) -> None:
        if result.index == 9:
            stop.set("SIGTERM")

    out: list = []
    worker = threading.Thread(target=lambda: out.append(run(str(sample_clip()), bundle=dev_bundle, save=video,
                                                            json_out=jsonl, stop=stop, on_result=on_result)))
    worker.start()
    worker.join(120)
    s = out[0]
    assert s.stopped_by == "stopped (SIGTERM)" and 10 <= s.frames <= 11  # the overlapped next frame is finished too
    assert len(jsonl.read_text().splitlines()) == s.frames
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == s.frames
    cap.release()
    before = jsonl.read_bytes(), video.read_bytes()
    early = StopRequest()
    early.set("SIGTERM")
    s = run(str(sample_clip()), bundle=dev_bundle, save=video, json_out=jsonl, stop=early)
    assert s.frames == 0 and s.stopped_by == "stopped (SIGTERM)"
    assert (jsonl.read_bytes(), video.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl", "o.mp4"]


def test_segments_roll_on_media_time_and_number_on(dev_bundle: Path, tmp_path: Path) -> None:
    """--segment 10 on the 36 s sample clip (6 FPS): four playable files of 60, 60, 60 and 36 frames; a second run
    numbers on from 4 and appends its JSON lines."""
    video, jsonl = tmp_path / "clip.mp4", tmp_path / "clip.jsonl"
    run(str(sample_clip()), bundle=dev_bundle, save=video, json_out=jsonl, segment=10)
    counts = []
    for p in sorted(tmp_path.glob("clip-*.mp4")):
        cap = cv2.VideoCapture(str(p))
        counts.append(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        cap.release()
    assert counts == [60, 60, 60, 36]
    s = run(str(sample_clip()), bundle=dev_bundle, save=video, json_out=jsonl, segment=10, max_frames=5)
    assert s.outputs["saved"].endswith("clip-00004.mp4") and not video.exists()
    assert len(jsonl.read_text().splitlines()) == 216 + 5
