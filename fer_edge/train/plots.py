"""Matplotlib on the Agg backend (no display needed): a figure, saving it atomically, and the Grad-CAM overlay that
reports and ``explain`` both draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge import atomic


def figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[object, np.ndarray]:
    """A Matplotlib figure on the Agg backend (no display needed) and its axes as a flat array."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return fig, axes.ravel()


def save_figure(fig: object, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure as PNG atomically and release it."""
    import matplotlib.pyplot as plt

    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def overlay(face: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8: the gray face with the JET-coloured heat map blended over it."""
    import cv2

    rgb = np.repeat(face[..., None], 3, axis=-1).astype(np.float32)
    jet = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    return np.uint8(np.clip((1 - alpha) * rgb + alpha * jet, 0, 255))
