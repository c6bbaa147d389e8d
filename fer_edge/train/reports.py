"""What a stage leaves behind for people: history.csv, curves.png, confusion.png, report.json/.txt, gradcam.png,
run.json, and the grid's summary.json/.md. Every file is written atomically; plots use Matplotlib's Agg backend."""

from __future__ import annotations

import csv
import hashlib
import io
import platform
import sys
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.data.types import FaceDataset
from fer_edge.labels import display
from fer_edge.train.plots import figure, overlay, save_figure


def write_history_csv(history: dict[str, list], path: str | Path) -> Path:
    """One row per epoch: epoch, phase, then every logged metric."""
    keys = [k for k in history if k != "phase"]
    n = max((len(v) for v in history.values()), default=0)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["epoch", "phase", *keys])
    for i in range(n):
        phase = history.get("phase", [""] * n)
        w.writerow([i + 1, phase[i] if i < len(phase) else "",
                    *[f"{history[k][i]:.6g}" if i < len(history[k]) else "" for k in keys]])
    return atomic.write_text(path, buf.getvalue())


def plot_curves(history: dict[str, list], path: str | Path, title: str = "") -> Path:
    """Accuracy and loss, train vs validation, with the unfreezing phases marked."""
    fig, (ax_acc, ax_loss) = figure(1, 2, (10, 3.8))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key, name in ((ax_acc, "accuracy", "accuracy"), (ax_loss, "loss", "loss")):
        for k, label, style in ((key, "train", "-"), (f"val_{key}", "val", "-"), ("adv_loss", "adversarial", ":")):
            if k == "adv_loss" and key != "loss":
                continue
            v = history.get(k)
            if v:
                ax.plot(epochs[:len(v)], v, style, marker="o", markersize=3, label=label)
        phases = history.get("phase", [])
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                ax.axvline(i + 0.5, color="gray", lw=0.8, ls="--")
                ax.text(i + 0.6, ax.get_ylim()[1], phases[i], fontsize=7, va="top", color="gray")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_confusion(cm: np.ndarray, classes: tuple[str, ...], path: str | Path, title: str = "") -> Path:
    """Counts and row-normalized (recall) confusion matrices side by side."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    names = [display(c) for c in classes]
    k = len(classes)
    fig, axes = figure(1, 2, (6 + 0.9 * k, 2.8 + 0.45 * k))
    fig.subplots_adjust(wspace=0.45)
    for ax, mat, sub, fmt in ((axes[0], cm, "counts", "{:d}"), (axes[1], norm, "row-normalized", "{:.2f}")):
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=max(float(mat.max()), 1e-9))
        for i in range(k):
            for j in range(k):
                v = mat[i, j]
                ax.text(j, i, fmt.format(int(v) if fmt == "{:d}" else v), ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * mat.max() else "black")
        ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_gradcam_grid(faces: np.ndarray, heats: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                      conf: np.ndarray, classes: tuple[str, ...], path: str | Path, title: str = "",
                      cols: int = 4) -> Path:
    """Misclassified faces: each as the face and its Grad-CAM overlay, titled 'true X / pred Y 89.98%'."""
    n = len(faces)
    if n == 0:
        fig, axes = figure(1, 1, (4, 1.5))
        axes[0].text(0.5, 0.5, "no misclassified test faces", ha="center", va="center")
        axes[0].axis("off")
        return save_figure(fig, path)
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = figure(rows, 2 * cols, (2.4 * cols * 2 * 0.62, 1.75 * rows))
    for a in axes:
        a.axis("off")
    for i in range(n):
        a_face, a_cam = axes[2 * i], axes[2 * i + 1]
        a_face.imshow(faces[i], cmap="gray", vmin=0, vmax=255)
        a_cam.imshow(overlay(faces[i], heats[i]))
        a_face.set_title(f"true {display(classes[int(y_true[i])])}", fontsize=7)
        a_cam.set_title(f"{display(classes[int(y_pred[i])])} {100 * float(conf[i]):.2f}%", fontsize=7,
                        color="firebrick")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def report_text(report: dict) -> str:
    """The human-readable report.txt: a per-class table, accuracy and macro averages, folds if any."""
    m = report["metrics"]
    lines = [f"{report.get('backbone', '')} / {report.get('stage', '')}: {report.get('protocol_text', '')}", ""]
    lines.append(f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for c, v in m["per_class"].items():
        lines.append(f"{display(c):<12}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['f1']:>10.3f}{v['support']:>9d}")
    lines += ["", f"{'accuracy':<12}{m['accuracy']:>30.4f}{m['n']:>9d}",
              f"{'macro avg':<12}{m['macro_precision']:>10.3f}{m['macro_recall']:>10.3f}{m['macro_f1']:>10.3f}"]
    folds = report.get("folds")
    if folds:
        accs = "  ".join(f"{a:.3f}" for a in folds["fold_accuracies"])
        lines += ["", f"per-fold accuracy ({folds['folds']} folds): {accs}",
                  f"mean ± std: {100 * folds['mean']:.2f} ± {100 * folds['std']:.2f}%"]
    if report.get("fgsm_accuracy") is not None:
        lines += ["", f"FGSM accuracy (epsilon {report['fgsm_epsilon']}): {report['fgsm_accuracy']:.4f}"
                      + (f"  (training adversarial weight {report.get('adversarial', 0)})")]
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: str | Path) -> None:
    """report.json and report.txt."""
    folder = Path(folder)
    atomic.write_json(folder / "report.json", report)
    atomic.write_text(folder / "report.txt", report_text(report))


def fingerprint(ds: FaceDataset) -> dict:
    """What identifies the data a stage saw: size, classes, counts, and a SHA-256 of images + labels."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.images).tobytes())
    h.update(np.ascontiguousarray(ds.labels).tobytes())
    if ds.subjects is not None:
        h.update("\n".join(map(str, ds.subjects)).encode())
    return {"name": ds.name, "root": ds.root, "faces": len(ds), "labelled": int((ds.labels >= 0).sum()),
            "image_size": list(ds.image_size), "classes": list(ds.classes), "class_counts": ds.class_counts(),
            "subjects": None if ds.subjects is None else len(set(ds.subjects.tolist())),
            "sha256": h.hexdigest()}


def versions() -> dict:
    """Library versions for run.json."""
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "numpy": np.__version__}
    from fer_edge import __version__

    out["fer_edge"] = __version__
    for mod in ("tensorflow", "keras", "cv2", "matplotlib"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def cell(entry: dict | None) -> str:
    """One summary-table cell: '79.70%' or '92.31 ± 4.10% (10 folds)'."""
    if not entry:
        return "-"
    if entry.get("status") == "failed":
        return "failed"
    if entry.get("std") is not None:
        return f"{100 * entry['accuracy']:.2f} ± {100 * entry['std']:.2f}% ({entry['folds']} folds)"
    return f"{100 * entry['accuracy']:.2f}%"


def write_summary(out: str | Path, stages: tuple[str, ...], rows: dict[str, dict[str, dict]]) -> None:
    """summary.json (every number) and summary.md (one table: backbone x stage test accuracy)."""
    out = Path(out)
    atomic.write_json(out / "summary.json", {"stages": list(stages), "results": rows})
    lines = ["| backbone | " + " | ".join(stages) + " | train time |",
             "|---|" + "---|" * len(stages) + "---|"]
    for backbone, res in rows.items():
        secs = sum(e.get("seconds", 0.0) for e in res.values() if e)
        lines.append(f"| {backbone} | " + " | ".join(cell(res.get(s)) for s in stages) + f" | {secs / 60:.1f} min |")
    note = ("Test accuracy per stage: official test split where the dataset has one; mean ± std over "
            "subject-independent folds otherwise (k-fold by subject for CK+, leave-one-subject-out for JAFFE).")
    atomic.write_text(out / "summary.md", "\n".join(lines) + "\n\n" + note + "\n")
