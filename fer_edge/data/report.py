"""What a dataset holds, as a dict (``summary``) and as a plain-text table (``format_summary``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_edge.data.types import SPLITS, FaceDataset
from fer_edge.labels import EMOTIONS


def summary(ds: FaceDataset) -> dict[str, Any]:
    """Layout, classes, faces per split and class (hard labels), subjects, image size and problems."""
    splits = ["all"] if ds.split is None else [s for s in (*SPLITS, *sorted(set(ds.split) - set(SPLITS)))
                                                 if np.any(ds.split == s)]
    counts: dict[str, dict[str, int]] = {}
    for s in splits:
        lab = ds.labels if s == "all" else ds.labels[ds.split == s]
        row = {c: int(np.sum(lab == EMOTIONS.index(c))) for c in ds.classes}
        row["unlabelled"] = int(np.sum(lab < 0))
        row["total"] = int(lab.size)
        counts[s] = row
    return {
        "layout": ds.name,
        "root": ds.root,
        "faces": len(ds),
        "labelled": int(np.sum(ds.labels >= 0)),
        "classes": list(ds.classes),
        "counts": counts,
        "subjects": None if ds.subjects is None else len(set(ds.subjects.tolist())),
        "image_size": list(ds.image_size),
        "channels": ds.channels,
        "soft_labels": ds.soft is not None,
        "problems": list(ds.problems),
    }


def format_summary(s: dict[str, Any]) -> str:
    """``summary`` as a few header lines and a class x split table."""
    h, w = s["image_size"]
    color = "gray" if s["channels"] == 1 else "RGB" if s["channels"] == 3 else f"{s['channels']} channels"
    lines = [
        f"layout    {s['layout']}",
        f"root      {s['root']}",
        f"faces     {s['faces']:,} ({s['labelled']:,} with a usable label)",
        f"images    {w}x{h} {color}",
        f"subjects  {'-' if s['subjects'] is None else s['subjects']}",
        f"labels    hard{' + soft (vote distributions)' if s['soft_labels'] else ''}",
        "",
    ]
    rows = [*s["classes"], "unlabelled", "total"]
    if not any(c["unlabelled"] for c in s["counts"].values()):
        rows.remove("unlabelled")
    counts = dict(s["counts"])
    if len(counts) > 1:
        counts["all"] = {r: sum(c[r] for c in s["counts"].values()) for r in rows}
    width = max(len(r) for r in rows) + 2
    lines.append("class".ljust(width) + "".join(c.rjust(10) for c in counts))
    for r in rows:
        lines.append(r.ljust(width) + "".join(f"{c[r]:,}".rjust(10) for c in counts.values()))
    if s["problems"]:
        lines += ["", "problems:"] + [f"  {p}" for p in s["problems"]]
    return "\n".join(lines)
