"""Where a model's int8 TFLite conversion loses accuracy: per-layer quantization error, and the test accuracy with
the worst layers kept in float (TensorFlow's QuantizationDebugger; float I/O, minmax calibration).

    python scripts/tflite_quant_debug.py results/train/backbones48/run/mobilenetv3small/ferplus/model.keras \
        --data ../shared/data/ferplus --float-layers 0,2,4

Calibration: the first --calib faces of the dataset's val split; accuracy: its labelled test faces, majority
protocol for FERPlus. Prints the --top layers by RMS error in quantization steps (sqrt(MSE) / scale).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a .keras model as fer-edge train writes it (input: [0, 1] faces)")
    ap.add_argument("--data", type=Path, required=True, help="a face dataset folder with val and test splits")
    ap.add_argument("--calib", type=int, default=300, help="calibration faces (default 300)")
    ap.add_argument("--top", type=int, default=10, help="layers to list (default 10)")
    ap.add_argument("--float-layers", default="0", help="comma list: how many of the worst layers to keep float")
    args = ap.parse_args(argv)
    try:
        counts = sorted({int(k) for k in args.float_layers.split(",")})
        if counts[0] < 0:
            raise ValueError
    except ValueError:
        print(f"error: --float-layers {args.float_layers!r}: give counts like 0,2,4", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(f"error: {args.model}: no such model file", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer_edge.data import load_dataset
    from fer_edge.errors import FerEdgeError

    try:
        ds = load_dataset(str(args.data))
        val, test = ds.only_split("val"), ds.only_split("test")
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keep = test.labels >= 0
    if len(val) == 0 or not keep.any():
        print(f"error: {args.data}: needs a val split and labelled test faces", file=sys.stderr)
        return 2
    import keras
    import tensorflow as tf

    calib = val.images[: args.calib].astype(np.float32) / 255.0
    xt, yt = test.images[keep].astype(np.float32) / 255.0, test.labels[keep]
    model = keras.models.load_model(args.model, compile=False)
    tmp = tempfile.TemporaryDirectory(prefix="quant_debug_")
    saved = Path(tmp.name) / "saved_model"
    model.export(str(saved), verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep() -> object:
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    conv.representative_dataset = rep
    debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=rep)
    debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    for r in rows:
        scale = float(r["scale"] or 0)
        r["steps"] = float(r["mean_squared_error"]) ** 0.5 / scale if scale else 0.0
    rows.sort(key=lambda r: -r["steps"])
    print(f"{len(rows)} quantized layers; the worst by RMS error in quantization steps:")
    for r in rows[: args.top]:
        print(f"  {r['steps']:7.2f}  {r['op_name']:<18} {r['tensor_name'][:90]}")
    names = [r["tensor_name"] for r in rows]
    for k in counts:
        opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=names[:k]) if k else None
        d = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=rep, debug_options=opts)
        path = Path(tmp.name) / f"float{k}.tflite"
        path.write_bytes(d.get_nondebug_quantized_model())
        print(f"{k} worst layers float: test {accuracy(path, xt, yt):.2f}% on {len(yt)} faces")
    tmp.cleanup()
    return 0


def accuracy(model: Path, x: np.ndarray, y: np.ndarray) -> float:
    from fer_edge.runtime.backends.litert import open_interpreter

    it = open_interpreter(model)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    pred = np.empty(len(x), dtype=np.int64)
    for k in range(len(x)):
        it.set_tensor(inp["index"], x[k : k + 1])
        it.invoke()
        pred[k] = int(np.argmax(it.get_tensor(out["index"])))
    return float(100 * np.mean(pred == y))


if __name__ == "__main__":
    raise SystemExit(main())
