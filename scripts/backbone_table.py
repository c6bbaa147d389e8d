"""The backbone tables of docs/benchmarks.md and README.md, built only from measured records in results/.

    python scripts/backbone_table.py costs --out results/bench/backbone-costs.json   # needs the train extra
    python scripts/backbone_table.py table --docs docs/benchmarks.md --readme README.md

`costs` builds every registered backbone as the trainer does (8-class FERPlus head) at 48 px and at its registry
input size, counts its parameters and estimates its FLOPs with the bench's own counter
(fer_edge.benchmarks.flops.estimate_tflite on an fp32 TFLite conversion): nothing is timed.
`table` reads results/bench/*/results.json (flip-TTA runs left out; per bundle the int8 TFLite row on LiteRT at 1
thread that the Pareto picture shows: from the run that started on the quietest machine), matches each bundle to
the training run in results/train whose test accuracy its fp32 TFLite artifact reproduces (same backbone, within
one face; name similarity breaks ties), follows each run's `init.from` for the total epochs, and judges
convergence from measured gains (see `converged`). Backbones trained but never converted get a row of their Keras
test accuracy; registered backbones with no finished FERPlus run get the second table (parameters and FLOPs only).
With --docs/--readme the tables replace the text between
<!-- backbone-table --> and <!-- /backbone-table --> (README: backbone-table-short) in those files.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COST_SIZES = (48,)  # plus each backbone's registry input size
SHIPPED = ("tflite", "litert", 1)  # format, backend, threads of the shipped rows
DEVICE, ARCH = "x86", "x86_64"  # the table's device: results/bench/*-x86 folders


# --- costs ---------------------------------------------------------------------------------------------------------

def costs(backbones: list[str], classes: int = 8) -> dict[str, Any]:
    """{backbone: {description, input_size, sizes: {px: {parameters, flops} or {error}}}} of registered backbones."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from fer_edge.benchmarks.flops import estimate_tflite
    from fer_edge.train.backbones import BACKBONES, build_classifier

    out: dict[str, Any] = {}
    for name in backbones:
        spec = BACKBONES.get(name)
        entry: dict[str, Any] = {"description": spec.description, "input_size": spec.input_size,
                                 "min_size": spec.min_size, "sizes": {}}
        for px in sorted({*(s for s in COST_SIZES if s >= spec.min_size), spec.input_size}):
            try:
                model = build_classifier(spec, classes, input_size=px)
                conv = tf.lite.TFLiteConverter.from_keras_model(model)
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
                with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                    path = Path(tmp) / "model.tflite"  # (the converter prints the whole signature on stdout)
                    path.write_bytes(conv.convert())
                    entry["sizes"][str(px)] = {"parameters": int(model.count_params()), "flops": estimate_tflite(path)}
            except Exception as exc:  # one backbone failing never stops the rest
                entry["sizes"][str(px)] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
            print(f"{name} @{px} px: {entry['sizes'][str(px)]}", file=sys.stderr)
        out[name] = entry
    return {"kind": "fer-edge-backbone-costs", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python scripts/backbone_table.py costs", "classes": classes,
            "flops_note": "2 x multiply-accumulates of conv, depthwise and dense layers at batch 1, from the fp32 "
                          "TFLite graph (fer_edge.benchmarks.flops.estimate_tflite)",
            "versions": {"tensorflow": tf.__version__}, "backbones": out}


# --- reading results -----------------------------------------------------------------------------------------------

@dataclass
class Train:
    """One finished FERPlus training run (results/train/**/run.json)."""

    dir: Path
    run: dict[str, Any]

    @property
    def backbone(self) -> str:
        return self.run["backbone"]

    @property
    def accuracy(self) -> float:
        return float(self.run["summary"]["accuracy"])

    @property
    def epochs(self) -> int:
        return int(self.run["summary"].get("epochs") or 0)

    @property
    def train_seconds(self) -> float | None:
        s = (self.run.get("timings") or {}).get("train_seconds")
        return float(s) if s is not None else None

    @property
    def init(self) -> str | None:
        src = (self.run.get("init") or {}).get("from")
        return None if src in (None, "", "none") else str(src)

    @property
    def from_scratch(self) -> bool:
        return self.init is None and self.run.get("config", {}).get("weights", "none") == "none"


def read_json(path: Path) -> Any:
    """A JSON file's content, or one clear error line and exit status 2 when it is unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"error: {path}: not readable JSON ({exc})", file=sys.stderr)
        raise SystemExit(2) from None


def train_runs(root: Path) -> list[Train]:
    out = []
    for p in sorted(root.rglob("run.json")):
        try:
            run = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if run.get("status") == "finished" and run.get("stage") == "ferplus" and "summary" in run:
            out.append(Train(p.parent, run))
    return out


def _parent(t: Train, runs: list[Train], repo: Path) -> Train | None:
    if t.init is None:
        return None
    src = (repo / t.init).resolve()
    return next((r for r in runs if r.dir.resolve() in (src, src.parent)), None)


def chain(t: Train, runs: list[Train], repo: Path) -> tuple[list[Train], bool]:
    """This run and the runs it continues, newest first; and whether the chain starts inside results/."""
    out, seen = [t], {t.dir}
    while True:
        p = _parent(out[-1], runs, repo)
        if p is None or p.dir in seen:
            return out, out[-1].init is None
        out.append(p)
        seen.add(p.dir)


def children(t: Train, runs: list[Train], repo: Path) -> list[Train]:
    return [r for r in runs if r is not t and (p := _parent(r, runs, repo)) is not None and p.dir == t.dir]


def converged(epochs: int, from_scratch: bool, own_gain: float | None, child_gains: list[float],
              val_tail_gain: float | None) -> str:
    """'no' / 'not quite' / 'yes' / 'maybe' with the evidence, from measured test-accuracy gains in points:
    a short run from scratch (< 10 epochs) has not converged; otherwise the largest of what this run added over its
    start and what continuing it added decides (>= 0.5 pp: no; >= 0.1: not quite; less: yes); a long run from
    scratch nobody continued is judged by its validation accuracy over its last 3 epochs."""
    if from_scratch and epochs < 10:
        return f"no: {epochs} epochs from scratch"
    evidence = [(g, f"its {epochs} epochs added {g:+.2f} pp test over its start") for g in
                ([own_gain] if own_gain is not None else [])]
    evidence += [(g, f"continuing it added {g:+.2f} pp test") for g in child_gains]
    if evidence:
        g, why = max(evidence)
        verdict = "no" if g >= 0.5 else "not quite" if g >= 0.1 else "yes"
        return f"{verdict}: {why}"
    if val_tail_gain is None:
        return "unknown: no history"
    return (f"no: val {val_tail_gain:+.2f} pp over its last 3 epochs" if val_tail_gain >= 0.5
            else f"maybe: val {val_tail_gain:+.2f} pp over its last 3 epochs")


def _val_tail_gain(t: Train) -> float | None:
    h = t.dir / "history.json"
    try:
        val = json.loads(h.read_text()).get("val_accuracy") or []
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return 100 * (val[-1] - val[-4]) if len(val) >= 4 else None


def bench_rows(root: Path) -> dict[str, dict[str, Any]]:
    """bundle name -> {run, folder, fp32, int8, point}: the row the Pareto picture shows for that bundle
    (fer_edge.benchmarks.pareto.backbone_points: the quietest, then latest, run), flip-TTA runs left out. The table
    is the x86 one: runs in the ``*-x86`` folders (not on another arch), read as one device whatever name each run
    gave it (the same machine was benched as "vm" and "x86-2core-dev"), so each bundle is one row and one front."""
    from fer_edge.benchmarks.pareto import backbone_points, bundle_names, front

    runs, folders = [], {}
    for p in sorted(root.glob(f"*-{DEVICE}/results.json")):
        for run in read_json(p).get("runs", []):
            if run.get("device", {}).get("arch", ARCH) != ARCH:
                continue
            if not run.get("settings", {}).get("flip_tta") and run["id"] not in folders:
                runs.append(run)
                folders[run["id"]] = p.parent
    points = backbone_points({"runs": [{**r, "device": {**r["device"], "name": DEVICE}} for r in runs]})
    names = bundle_names(r["bundle"] or r["model"] for run in runs for r in run["rows"])
    on_front = {pt.name for pt in front(points)}
    out: dict[str, dict[str, Any]] = {}
    for pt in points:
        run = next(r for r in runs if r["id"] == pt.run_id)
        by = {r["precision"]: r for r in run["rows"] if names[r["bundle"] or r["model"]] == pt.name
              and (r["format"], r["backend"], r["threads"]) == SHIPPED and r["precision"] in ("fp32", "int8")}
        out[pt.name] = {"run": run, "folder": folders[run["id"]], "fp32": by.get("fp32"), "int8": by["int8"],
                        "front": pt.name in on_front}
    return out


def match(name: str, bench: dict[str, Any], runs: list[Train]) -> Train | None:
    """The training run whose Keras test accuracy the bundle's fp32 TFLite artifact reproduces."""
    fp32 = bench["fp32"]
    if fp32 is None or fp32["accuracy"] is None:
        return None
    tol = 1.0 / max(int(fp32["eval_faces"] or 1), 1) + 1e-9
    cands = [t for t in runs if t.backbone == fp32["backbone"] and abs(t.accuracy - fp32["accuracy"]) <= tol]
    return max(cands, key=lambda t: difflib.SequenceMatcher(None, name, str(t.dir)).ratio(), default=None)


# --- rendering -----------------------------------------------------------------------------------------------------

def _m(n: int | None, unit: str = "M") -> str:
    return "n/a" if n is None else f"{n / 1e6:.2f}{unit}" if n < 1e9 else f"{n / 1e9:.2f}G"


def _dur(s: float | None) -> str:
    if s is None:
        return "n/r"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def _rel(p: Path, repo: Path) -> str:
    try:
        return p.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return str(p)


def _training_cells(t: Train, runs: list[Train], repo: Path) -> tuple[str, str, str]:
    """(epochs, time, converged?) of a training run."""
    links, starts_here = chain(t, runs, repo)
    per_epoch = (t.train_seconds or 0) / max(t.epochs, 1)
    timed = [r.train_seconds if (r.train_seconds or 0) / max(r.epochs, 1) >= 5 else None for r in links]
    total_epochs = sum(r.epochs for r in links)
    epochs = f"{t.epochs}" + (f" ({total_epochs}{'' if starts_here else '+'} total)" if len(links) > 1 else "")
    time = _dur(timed[0]) if per_epoch >= 5 else "n/r (resumed)"
    if len(links) > 1:
        known = sum(s for s in timed if s is not None)
        untimed = None in timed or not starts_here
        time += (" (earlier runs not timed)" if untimed and known == (timed[0] or 0)
                 else f" ({'>= ' if untimed else ''}{_dur(known)} total)")
    parent = links[1] if len(links) > 1 else None
    own = 100 * (t.accuracy - parent.accuracy) if parent else None
    kids = [100 * (c.accuracy - t.accuracy) for c in children(t, runs, repo)]
    return epochs, time, converged(t.epochs, t.from_scratch, own, kids, _val_tail_gain(t))


def _cost(cost_doc: dict[str, Any], backbone: str, px: int, key: str) -> int | None:
    v = cost_doc.get("backbones", {}).get(backbone, {}).get("sizes", {}).get(str(px), {}).get(key)
    return int(v) if v is not None else None


def tables(bench_root: Path, train_root: Path, cost_doc: dict[str, Any], repo: Path = REPO) -> dict[str, str]:
    """{'full': the docs table with its notes, 'short': the README table, 'registered': the second table}."""
    from fer_edge.benchmarks.pareto import start_load

    runs = train_runs(train_root)
    bench = bench_rows(bench_root)
    full, short, sources, used = [], [], [], set()
    head = ("| backbone | model | input px | params | FLOPs | epochs | training time | converged? | FERPlus test fp32 "
            "| int8 | int8 ms/face | int8 MB |")
    items = []
    for name, b in bench.items():
        t = match(name, b, runs)
        items.append((name, b, t))
        if t:
            used.add(t.dir)
    benched = {b["int8"]["backbone"] for b in bench.values()}
    for backbone in sorted({t.backbone for t in runs} - benched):  # trained, never converted: its best run
        best = max((t for t in runs if t.backbone == backbone), key=lambda t: t.accuracy)
        items.append((best.dir.name if best.dir.name != "ferplus" else f"{backbone}-grid", None, best))
    items.sort(key=lambda x: (x[1] is None, x[1]["int8"]["latency_p50_ms"] if x[1] else 0, x[0]))
    for name, b, t in items:
        name = name.replace("|", "\\|")  # a folder name from results/ must not split the markdown row
        px = int(t.run["input_size"]) if t else None
        epochs, time, conv = _training_cells(t, runs, repo) if t else ("?", "?", "unknown: no training run matched")
        if b:
            i8, f32 = b["int8"], b["fp32"]
            params, flops = i8["parameters"], i8["flops"]
            cells = [f"{100 * f32['accuracy']:.2f}%" if f32 and f32["accuracy"] is not None else "n/a",
                     f"{100 * i8['accuracy']:.2f}%" + (f" ({i8['status']})" if i8["status"] != "passed" else ""),
                     f"{i8['latency_p50_ms']:.2f}", f"{i8['size_mb']:.2f}"]
            load = b["run"]["device"].get("load_average")
            load = (load[0] if isinstance(load, list) else load) if start_load(b["run"]["device"]) is not None else "?"
            sources.append(f"- {name}: bench `{_rel(b['folder'], repo)}` ({b['run']['created'][:10]}, "
                           f"{b['run']['device']['name']}, load average {load} at start)"
                           + (f", trained in `{_rel(t.dir, repo)}`" if t else ", no training run matched"))
        else:
            params, flops = (_cost(cost_doc, t.backbone, px, k) for k in ("parameters", "flops"))
            cells = [f"{100 * t.accuracy:.2f}% (Keras)", "not converted", "-", "-"]
            sources.append(f"- {name}: trained in `{_rel(t.dir, repo)}`; never converted or benched (params and "
                           "FLOPs from the costs file)")
        label = f"**{name}**" if b and b["front"] else name
        row = [t.backbone if t else b["int8"]["backbone"], label, str(px or "?"), _m(params), _m(flops), epochs, time,
               conv, *cells]
        full.append("| " + " | ".join(row) + " |")
        short.append("| " + " | ".join([row[1], row[3], row[4], row[9], row[10], conv.split(":")[0]]) + " |")
    sep = "|" + "---|" * head.count(" | ") + "---|"
    full_text = "\n".join([head, sep, *full, "", "**Bold**: on the Pareto front of int8 accuracy vs ms per face "
                           "(nothing else is both faster and at least as accurate). Sources:", "", *sources])
    short_text = "\n".join(["| model | params | FLOPs | FERPlus int8 | int8 ms/face | converged? |",
                            "|---|---|---|---|---|---|", *short])
    trained = {t.backbone for t in runs}
    reg = ["| backbone | registry input px | params | FLOPs @48 px | FLOPs @registry px | here |",
           "|---|---|---|---|---|---|"]
    for backbone, e in sorted(cost_doc.get("backbones", {}).items()):
        if backbone in trained:
            continue
        started = sorted(_rel(p.parent, repo) for p in train_root.rglob("plan.json")
                         if read_json(p).get("backbone") == backbone)
        here = f"training started (`{started[0]}`), not finished" if started else "not trained"
        px = int(e["input_size"])
        params = _cost(cost_doc, backbone, px, "parameters") or _cost(cost_doc, backbone, 48, "parameters")
        f48 = _cost(cost_doc, backbone, 48, "flops")
        min_size = int(e.get("min_size", 0))
        at48 = _m(f48) if f48 else f"n/a (min {min_size} px)" if min_size > 48 else "n/a"
        reg.append(f"| {backbone} | {px} | {_m(params)} | {at48} | "
                   f"{_m(_cost(cost_doc, backbone, px, 'flops'))} | {here} |")
    return {"full": full_text, "short": short_text, "registered": "\n".join(reg)}


def replace_block(text: str, tag: str, body: str) -> str:
    """Replace what lies between <!-- TAG --> and <!-- /TAG --> with ``body``."""
    pat = re.compile(rf"(<!-- {re.escape(tag)} -->\n)(?:.*?\n)?(<!-- /{re.escape(tag)} -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"error: no <!-- {tag} --> ... <!-- /{tag} --> block to fill")
    return pat.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text, count=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("costs", help="parameters and FLOPs of registered backbones (builds them; no timing)")
    c.add_argument("--backbones", help="comma-separated (default: every registered backbone)")
    c.add_argument("--out", type=Path, default=REPO / "results/bench/backbone-costs.json")
    t = sub.add_parser("table", help="the markdown tables from results/")
    t.add_argument("--bench", type=Path, default=REPO / "results/bench")
    t.add_argument("--train", type=Path, default=REPO / "results/train")
    t.add_argument("--costs", type=Path, default=REPO / "results/bench/backbone-costs.json")
    t.add_argument("--docs", type=Path, help="fill the backbone-table block of this file (docs/benchmarks.md)")
    t.add_argument("--readme", type=Path, help="fill the backbone-table-short block of this file (README.md)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from fer_edge import atomic

    if args.cmd == "costs":
        from fer_edge.train.backbones import BACKBONES

        names = args.backbones.split(",") if args.backbones else BACKBONES.names()
        atomic.write_json(args.out, costs(names))
        print(f"wrote {args.out}")
        return 0
    for p in (args.bench, args.train):
        if not p.is_dir():
            print(f"error: {p}: no such folder", file=sys.stderr)
            return 2
    cost_doc = read_json(args.costs) if args.costs.is_file() else {}
    out = tables(args.bench, args.train, cost_doc)
    docs = "\n".join([out["full"], "", "Registered, not yet trained here (parameters and FLOPs only, from "
                      f"`{_rel(args.costs, REPO)}`):", "", out["registered"]])
    filled = [(path, replace_block(path.read_text(), tag, body)) for path, tag, body in
              ((args.docs, "backbone-table", docs), (args.readme, "backbone-table-short", out["short"])) if path]
    for path, text in filled:  # both blocks found before either file is written
        atomic.write_text(path, text)
        print(f"filled {path}")
    if not (args.docs or args.readme):
        print(docs + "\n\n" + out["short"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
