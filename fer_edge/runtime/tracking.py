"""IoU tracker: detections are matched to tracks greedily by IoU; between detection frames each track's box moves
with its (damped) velocity. Track ids are stable for as long as a face keeps being matched."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fer_edge.runtime.geometry import iou_matrix
from fer_edge.runtime.types import Face


@dataclass
class Track:
    id: int
    face: Face
    box: np.ndarray           # float (x, y, w, h), the current (maybe predicted) box
    velocity: np.ndarray      # px per frame for x, y
    last_frame: int           # frame index of the last matched detection
    hits: int = 1


class IoUTracker:
    """``update(faces, frame)`` on detection frames, ``predict(frame)`` in between; both return (track id, face).

    Between detections only the faces found at the last detection are moved (box and keypoints, so an eye-aligned
    crop stays aligned) and returned; a track the detector
    missed is kept, unseen, for ``max_age`` frames so the face gets its id back, then dropped (``pop_removed``).
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 15, damping: float = 0.8) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.damping = float(damping)
        self.tracks: dict[int, Track] = {}
        self._next_id = 1
        self._removed: list[int] = []
        self._frame = -1
        self._detected = -1  # frame of the last update()

    def update(self, faces: list[Face], frame: int) -> list[tuple[int, Face]]:
        """Match this frame's detections to tracks; unmatched detections start new tracks."""
        self._advance(frame)
        self._detected = frame
        ids = list(self.tracks)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        matched: dict[int, int] = {}  # detection index -> track id
        if ids and len(faces):
            ious = iou_matrix(boxes, np.stack([self.tracks[i].box for i in ids]))
            for d, t in sorted(np.argwhere(ious >= self.iou_threshold).tolist(), key=lambda dt: -ious[dt[0], dt[1]]):
                if d in matched or ids[t] in matched.values():
                    continue
                matched[d] = ids[t]
        out = []
        for d, face in enumerate(faces):
            if d in matched:
                tr = self.tracks[matched[d]]
                gap = max(1, frame - tr.last_frame)
                new_v = (boxes[d, :2] - np.asarray(tr.face.box[:2], np.float32)) / gap
                tr.velocity = 0.5 * tr.velocity + 0.5 * new_v
                tr.box, tr.face, tr.last_frame, tr.hits = boxes[d].copy(), face, frame, tr.hits + 1
                out.append((tr.id, face))
            else:
                tid = self._next_id
                self._next_id += 1
                self.tracks[tid] = Track(tid, face, boxes[d].copy(), np.zeros(2, np.float32), frame)
                out.append((tid, face))
        self._expire(frame)
        return out

    def predict(self, frame: int) -> list[tuple[int, Face]]:
        """Boxes of live tracks moved to ``frame`` without running the detector."""
        self._advance(frame)
        self._expire(frame)
        out = []
        for tr in self.tracks.values():
            if tr.last_frame != self._detected:  # missed at the last detection: not shown until found again
                continue
            x, y, w, h = (round(float(v)) for v in tr.box)
            dx, dy = (float(tr.box[i]) - float(tr.face.box[i]) for i in (0, 1))
            kps = tuple((float(kx) + dx, float(ky) + dy) for kx, ky in tr.face.keypoints)
            out.append((tr.id, replace(tr.face, box=(x, y, w, h), keypoints=kps)))
        return out

    def _advance(self, frame: int) -> None:
        steps = frame - self._frame if self._frame >= 0 else 0
        for _ in range(max(0, min(steps, self.max_age + 1))):
            for tr in self.tracks.values():
                tr.box[:2] += tr.velocity
                tr.velocity *= self.damping
        self._frame = frame

    def _expire(self, frame: int) -> None:
        for tid in [t.id for t in self.tracks.values() if frame - t.last_frame > self.max_age]:
            del self.tracks[tid]
            self._removed.append(tid)

    def pop_removed(self) -> list[int]:
        """Ids of tracks dropped since the last call (so per-track state elsewhere can be forgotten)."""
        out, self._removed = self._removed, []
        return out

    def reset(self) -> None:
        """Drop every track and start ids again from 1 (a new, unrelated scene)."""
        self._removed.extend(self.tracks)
        self.tracks.clear()
        self._frame = -1
        self._detected = -1
        self._next_id = 1
