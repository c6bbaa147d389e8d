"""Model cost: parameters and FLOPs from the manifest, else FLOPs estimated from a TFLite graph, else why not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.bundle import Bundle

MANIFEST_KEYS = ("flops",)  # looked up under the manifest's evaluation, then provenance


def parameters(bundle: Bundle) -> tuple[int | None, str]:
    """(parameter count, where it came from or why it is missing)."""
    p = bundle.manifest.parameters
    return (int(p), "manifest") if p else (None, "n/a: the manifest has no parameter count")


def estimate_tflite(path: str | Path) -> int:
    """FLOPs at batch 1 (2 x multiply-accumulates of conv, depthwise conv and dense layers) of a TFLite model."""
    from fer_edge.runtime.backends.litert import open_interpreter

    it = open_interpreter(path)
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    macs = 0
    for op in it._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            continue
        ins = [tensors[i]["shape"] for i in op["inputs"] if i >= 0]
        out = tensors[op["outputs"][0]]["shape"]
        per_out = int(np.prod(out[1:]))  # batch 1
        if name == "CONV_2D":
            macs += per_out * int(np.prod(ins[1][1:]))  # weights (cout, kh, kw, cin)
        elif name == "DEPTHWISE_CONV_2D":
            macs += per_out * int(ins[1][1] * ins[1][2])  # weights (1, kh, kw, cout)
        elif name == "FULLY_CONNECTED":
            macs += per_out * int(ins[1][-1])  # weights (out, in)
        else:  # TRANSPOSE_CONV: inputs (output_shape, weights (cout, kh, kw, cin), x)
            macs += int(np.prod(ins[2][1:])) * int(np.prod(ins[1][:3]))
    return 2 * macs


def flops(bundle: Bundle) -> tuple[int | None, str]:
    """(FLOPs at batch 1, where they came from or why they are missing)."""
    m = bundle.manifest
    for where, d in (("manifest evaluation", m.evaluation), ("manifest provenance", m.provenance)):
        for key in MANIFEST_KEYS:
            if isinstance(d.get(key), (int, float)) and d[key] > 0:
                return int(d[key]), where
    tfl = sorted(bundle.find("tflite"), key=lambda a: a.precision != "fp32")
    if not tfl:
        return None, "n/a: no flops in the manifest and no TFLite artifact to estimate them from"
    try:
        return estimate_tflite(bundle.verify(tfl[0])), f"estimated from {tfl[0].file} (2 x conv/dense MACs)"
    except Exception as exc:  # an estimate is optional; say why it is missing
        return None, f"n/a: no flops in the manifest; estimate failed ({str(exc)[:80]})"
