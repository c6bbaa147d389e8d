"""The bundled demo sample: small, labelled, consistent with its clip; and the script that builds it."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from fer_edge.labels import EMOTIONS
from fer_edge.runtime.sample import CLIP, FACES_CSV, HOLD, SAMPLE_DIR, build, read_faces


def _frame_count(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n = 0
    size = (0, 0)
    while n < 10_000:
        ok, img = cap.read()
        if not ok:
            break
        n += 1
        size = img.shape[1], img.shape[0]
    cap.release()
    return n, size


def test_shipped_sample_is_small_labelled_and_consistent() -> None:
    total = sum(p.stat().st_size for p in SAMPLE_DIR.iterdir())
    assert total < 2_000_000
    assert "MIT" in (SAMPLE_DIR / "ATTRIBUTION.md").read_text()
    faces = read_faces()
    assert 150 <= len(faces) <= 200 and {f.label for f in faces} <= set(EMOTIONS)
    per_scene: dict[int, int] = {}
    for f in faces:
        per_scene[f.scene] = per_scene.get(f.scene, 0) + 1
        x, y, w, h = f.box
        assert 0 <= x and x + w <= 640 and 0 <= y and y + h <= 480 and w >= 96
        assert f.last_frame - f.first_frame + 1 == HOLD
    assert set(per_scene.values()) <= {2, 3}
    n, size = _frame_count(SAMPLE_DIR / CLIP)
    assert size == (640, 480) and n == max(f.last_frame for f in faces) + 1


@pytest.mark.realdata
def test_build_sample_from_ferplus(ferplus_dir: Path, tmp_path: Path) -> None:
    recs = build(ferplus_dir, tmp_path, faces=8, seed=1)
    assert len(recs) == 8 and [r.scene for r in recs] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert read_faces(tmp_path) == recs
    assert (tmp_path / FACES_CSV).is_file()
    n, _ = _frame_count(tmp_path / CLIP)
    assert n == 3 * HOLD
