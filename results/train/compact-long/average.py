"""Score what the continued run (run.py) left: its best epoch, the average of its last N epochs' weights (SWA, with
BatchNorm statistics recomputed on the training faces), each with and without flip test-time augmentation.
The variant kept is the one best on FERPlus Valid (without TTA: the runtime classifies each face once); FERPlus
Test is scored for every variant and reported, never chosen on.

    python results/train/compact-long/average.py [RUN] [N ...]   # default runs/compact-long, N = 2 4 6 8
Writes RUN/average.json and RUN/swa_<N>.keras, and the kept model with its reports (report.json/.txt,
confusion.png, gradcam.png, curves.png, history, run.json) into results/train/compact-long/.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from fer_edge import atomic
from fer_edge.train import reports
from fer_edge.train.backbones import load_model
from fer_edge.train.chain import _mistakes
from fer_edge.train.evaluate import evaluate, metrics, predict
from fer_edge.train.folds import load_stage_data, official_parts, resolve_data
from fer_edge.train.trainer import recompute_batchnorm, to_model_input

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compact-long")
counts = [int(n) for n in sys.argv[2:]] or [2, 4, 6, 8]
stage = run / "compact" / "ferplus"
epochs = sorted((run / "epochs").glob("e*.weights.h5"))
ds = load_stage_data("ferplus", resolve_data("ferplus", {}), None, 0)
train, val, test = official_parts(ds, 0.1, 0)
xt, xv, xs = (to_model_input(d.images, 48) for d in (train, val, test))
yv, ys = val.local_labels(), test.local_labels()


def scores(model: object) -> dict:
    out = {}
    for name, x, y in (("val", xv, yv), ("test", xs, ys)):
        p = predict(model, x)
        pf = predict(model, x[:, :, ::-1])
        out[name] = float((p.argmax(1) == y).mean())
        out[name + "_flip_tta"] = float(((p + pf).argmax(1) == y).mean())
    return out


results = {"best_epoch": scores(load_model(stage / "model.keras")), "epochs": len(epochs), "swa": {}}
print("best epoch", results["best_epoch"], flush=True)
model = load_model(stage / "model.keras")
for n in counts:
    if n > len(epochs):
        continue
    weights = []
    for path in epochs[-n:]:
        model.load_weights(path)
        weights.append([np.asarray(w) for w in model.get_weights()])
    model.set_weights([np.mean(ws, axis=0) for ws in zip(*weights, strict=True)])
    recompute_batchnorm(model, xt)
    results["swa"][n] = scores(model)
    with atomic.atomic_path(run / f"swa_{n}.keras") as tmp:
        model.save(tmp)
    print(f"last {n} epochs averaged", results["swa"][n], flush=True)
atomic.write_json(run / "average.json", results)

# keep the variant best on validation, and write its reports as a chain stage would
variants = {"best_epoch": results["best_epoch"]["val"], **{f"swa_{n}": r["val"] for n, r in results["swa"].items()}}
kept = max(variants, key=lambda k: (variants[k], k == "best_epoch"))
model = load_model(stage / "model.keras" if kept == "best_epoch" else run / f"{kept}.keras")
dest = Path(__file__).parent
ev = evaluate(model, test, fgsm_epsilon=0.02)
probs = ev.probs
m = metrics(ev.y_true, ev.y_pred, test.classes)
title = "compact / ferplus, continued" + ("" if kept == "best_epoch" else f", last {kept[4:]} epochs averaged")
report = json.loads((stage / "report.json").read_text())
report.update(metrics=m, fgsm_accuracy=ev.fgsm_accuracy, kept=kept, variants=results, best_val_accuracy=variants[kept],
              protocol_text=f"official test split ({m['n']} faces)")
reports.write_report(report, dest)
reports.plot_confusion(np.asarray(m["confusion"]), test.classes, dest / "confusion.png", f"{title}: test set")
cams = _mistakes(model, xs, ev.y_true, probs, 16)
reports.plot_gradcam_grid(cams["faces"], cams["heats"], cams["y_true"], cams["y_pred"], cams["conf"], test.classes,
                          dest / "gradcam.png", f"{title}: most confident mistakes (Grad-CAM of the prediction)")
for name in ("curves.png", "history.json", "history.csv"):
    shutil.copyfile(stage / name, dest / name)
info = json.loads((stage / "run.json").read_text())
info["summary"].update(accuracy=m["accuracy"], fgsm_accuracy=ev.fgsm_accuracy, pooled_accuracy=m["accuracy"],
                       macro_f1=m["macro_f1"], macro_recall=m["macro_recall"], best_val_accuracy=variants[kept],
                       model="model.keras")
info["kept"] = {"variant": kept, "scores": results}
atomic.write_json(dest / "run.json", info)
with atomic.atomic_path(dest / "model.keras") as tmp:
    model.save(tmp)
print(f"kept {kept}: test {m['accuracy']:.4f} -> {dest}")
