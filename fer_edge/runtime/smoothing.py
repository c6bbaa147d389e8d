"""Per-track smoothing: an exponential moving average of the probabilities, and hysteresis on the shown label
(it changes only when another class leads the current one by ``margin``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class _State:
    probs: np.ndarray
    label: int


class Smoother:
    """``update(track, probs) -> (smoothed probs, shown class index)``.

    ``alpha`` is the weight of the past: 0 = no smoothing (raw probabilities, label = argmax), 0.9 = heavy.
    """

    def __init__(self, alpha: float = 0.0, margin: float = 0.1) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)
        self.margin = float(margin) if alpha > 0 else 0.0
        self.states: dict[int, _State] = {}

    def update(self, track: int, probs: np.ndarray) -> tuple[np.ndarray, int]:
        probs = np.asarray(probs, np.float32)
        st = self.states.get(track)
        if st is None or self.alpha == 0.0:
            st = _State(probs.copy(), int(np.argmax(probs)))
            self.states[track] = st
            return st.probs, st.label
        st.probs = self.alpha * st.probs + (1.0 - self.alpha) * probs
        best = int(np.argmax(st.probs))
        if best != st.label and st.probs[best] >= st.probs[st.label] + self.margin:
            st.label = best
        return st.probs, st.label

    def forget(self, tracks: list[int]) -> None:
        for t in tracks:
            self.states.pop(t, None)

    def reset(self) -> None:
        self.states.clear()
