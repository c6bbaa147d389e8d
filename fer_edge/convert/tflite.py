"""TFLite through TFLiteConverter.from_saved_model: fp32, fp16, dynamic range, full int8 (int8 or float I/O).

Only TFLite builtin ops are allowed (no Flex delegate: LiteRT on a Pi has none), so a model that needs a
TensorFlow op fails here with the op named instead of producing a file the device cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.convert.context import ExportContext, Exported
from fer_edge.convert.formats import ExportFormat
from fer_edge.convert.toolchain import ModuleToolchain, register


def attempts(entry: ExportFormat, ctx: ExportContext) -> list[dict[str, Any]]:
    """Ways to build ``entry``, the default first; the rest are tried under --max-drop."""
    if entry.precision in ("int8", "int8_float_io"):
        return [{"activations": "int8"}, {"activations": "int16"}]  # 16x8: int16 activations, int8 weights
    return [{}]


def export(entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> Exported:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(ctx.saved_model()))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    opts: dict[str, Any] = {"converter": f"tf.lite.TFLiteConverter.from_saved_model (tensorflow {tf.__version__})",
                            "ops": "TFLITE_BUILTINS"}
    p = entry.precision
    if p == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
        opts["weights"] = "float16"
    elif p == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        opts["weights"] = "int8 (dynamic-range activations)"
    elif p in ("int8", "int8_float_io"):
        x = ctx.require_calib(entry)
        act16 = attempt.get("activations") == "int16"
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = _representative(x)
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if act16 \
            else tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        conv.target_spec.supported_ops = [ops]
        if p == "int8":
            conv.inference_input_type = conv.inference_output_type = tf.int16 if act16 else tf.int8
        opts.update(ops=ops.name, weights="int8 per-channel", activations="int16" if act16 else "int8",
                    calibration={**ctx.calib_info, "method": "minmax (TFLite converter)"})
    dst.write_bytes(conv.convert())
    return Exported((dst,), opts, **io_details(dst))


def _representative(x: np.ndarray) -> Any:
    def gen() -> Any:
        for i in range(len(x)):
            yield [x[i : i + 1]]

    return gen


def io_details(path: Path) -> dict[str, Any]:
    """Input/output dtypes and (scale, zero point) read back from the model with the runtime's interpreter."""
    from fer_edge.runtime.backends.litert import open_interpreter

    interp = open_interpreter(path)
    out: dict[str, Any] = {}
    for side, det in (("input", interp.get_input_details()[0]), ("output", interp.get_output_details()[0])):
        dtype = np.dtype(det["dtype"])
        out[f"{side}_dtype"] = dtype.name
        scale, zero = det["quantization"]
        if np.issubdtype(dtype, np.integer) and scale:
            out[f"{side}_quant"] = {"scale": float(scale), "zero_point": int(zero)}
    return out


TOOLCHAIN = register(ModuleToolchain("tflite", sys.modules[__name__]))
