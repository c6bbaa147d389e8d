"""Validation accuracy per epoch of several training runs in one picture, to compare recipes at equal epochs.

    python scripts/recipe_curves.py heavy=results/train/sepnet/run/sepnet/ferplus \
        strong=results/train/sepnet-strong/run/sepnet/ferplus --out results/train/sepnet-recipes.png

Each PATH is a stage folder (its history.json, else its ckpt/state.json: a run in progress), or one of those files.
Validation accuracy is drawn solid, the training accuracy (on augmented faces) dashed in the same colour; the best
validation epoch of each run is marked and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def history_of(path: Path) -> dict[str, list[float]]:
    """The Keras history (accuracy, val_accuracy, ...) of a stage folder, history.json or state.json."""
    if path.is_dir():
        found = [p for p in (path / "history.json", path / "ckpt" / "state.json") if p.is_file()]
        if not found:
            raise ValueError(f"{path}: no history.json or ckpt/state.json")
        path = found[0]
    try:
        doc: Any = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    hist = doc.get("history", doc) if isinstance(doc, dict) else None
    if not isinstance(hist, dict) or not isinstance(hist.get("val_accuracy"), list) or not hist["val_accuracy"]:
        raise ValueError(f"{path}: no val_accuracy history")
    return hist


def parse_run(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"{spec!r}: give NAME=PATH")
    return name, Path(path)


def plot(runs: dict[str, dict[str, list[float]]], out: Path) -> Path:
    from fer_edge.train.plots import figure, save_figure

    fig, axes = figure(1, 1, (8, 4.5))
    ax = axes.flat[0]
    for i, (name, hist) in enumerate(runs.items()):
        colour = f"C{i}"
        val = [100 * v for v in hist["val_accuracy"]]
        epochs = range(1, len(val) + 1)
        ax.plot(epochs, val, color=colour, label=f"{name} (Valid)")
        if isinstance(hist.get("accuracy"), list) and hist["accuracy"]:
            ax.plot(range(1, len(hist["accuracy"]) + 1), [100 * v for v in hist["accuracy"]], color=colour,
                    linestyle="--", alpha=0.6, label=f"{name} (train, augmented)")
        best = max(range(len(val)), key=val.__getitem__)
        ax.scatter([best + 1], [val[best]], color=colour, zorder=3)
        ax.annotate(f"{val[best]:.2f}%", (best + 1, val[best]), textcoords="offset points", xytext=(4, 4),
                    color=colour, fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy %")
    ax.set_ylim(bottom=max(0.0, min(min(100 * v for v in h["val_accuracy"]) for h in runs.values()) - 2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("validation accuracy per epoch")
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=PATH", help="a stage folder, history.json or state.json")
    ap.add_argument("--out", type=Path, required=True, help="the picture (.png)")
    args = ap.parse_args(argv)
    try:
        runs = dict(parse_run(s) for s in args.runs)
        histories = {name: history_of(path) for name, path in runs.items()}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, hist in histories.items():
        val = hist["val_accuracy"]
        best = max(range(len(val)), key=val.__getitem__)
        print(f"{name}: {len(val)} epochs, best Valid {100 * val[best]:.2f}% at epoch {best + 1}")
    print(f"wrote {plot(histories, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
