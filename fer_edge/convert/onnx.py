"""ONNX: float32 from the Keras export (tf2onnx), float16 with onnxruntime's converter, int8 as static QDQ
with onnxruntime.quantization (per-channel weights, minmax / entropy / percentile calibration)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.convert.context import CALIB_METHODS, ExportContext, Exported
from fer_edge.convert.formats import ExportFormat
from fer_edge.convert.toolchain import ModuleToolchain, register

_ELEM = {1: "float32", 10: "float16", 3: "int8", 2: "uint8"}


def attempts(entry: ExportFormat, ctx: ExportContext) -> list[dict[str, Any]]:
    """The chosen calibration method first; under --max-drop the others, then first and last layers in float."""
    if entry.precision != "int8":
        return [{}]
    others = [m for m in CALIB_METHODS if m != ctx.calib_method]
    return [{"method": ctx.calib_method}, *({"method": m} for m in others),
            {"method": ctx.calib_method, "float_layers": "first_last"}]


def export(entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> Exported:
    import onnx

    src = ctx.onnx_fp32()
    opts: dict[str, Any] = {"exporter": f"keras export -> tf2onnx, opset {_opset(src)}"}
    if entry.precision == "fp32":
        shutil.copyfile(src, dst)
    elif entry.precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))
        opts["converter"] = "onnxruntime.transformers.float16 (keep_io_types)"
    elif entry.precision == "int8":
        opts.update(_quantize(entry, ctx, dst, attempt))
    else:
        raise ValueError(f"onnx has no {entry.precision} variant")
    _add_metadata(dst, ctx.metadata(entry))
    return Exported((dst,), opts, **io_details(dst))


def _quantize(entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = ctx.require_calib(entry)
    pre = ctx.cached("model_fp32_pre.onnx",
                     lambda p: quant_pre_process(str(ctx.onnx_fp32()), str(p), skip_symbolic_shape=True))
    method = attempt.get("method", ctx.calib_method)
    exclude = _first_last(pre) if attempt.get("float_layers") == "first_last" else []
    quantize_static(
        str(pre), str(dst), _Reader(_input_name(pre), x), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
        calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                          "percentile": CalibrationMethod.Percentile}[method],
    )
    opts: dict[str, Any] = {
        "quantizer": f"onnxruntime.quantization.quantize_static (onnxruntime {onnxruntime.__version__})",
        "format": "QDQ", "weights": "int8 per-channel", "activations": "int8",
        "calibration": {**ctx.calib_info, "method": method},
    }
    if exclude:
        opts["float_nodes"] = exclude
    return opts


class _Reader:
    """onnxruntime CalibrationDataReader over real faces, one at a time (the histogram calibrators of
    entropy and percentile stack per-batch outputs and fail on a ragged last batch)."""

    def __init__(self, name: str, x: np.ndarray, batch: int = 1) -> None:
        self._it = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _first_last(path: Path) -> list[str]:
    """Names of the first Conv and the classifier (the last MatMul, Gemm or Conv node: a 1x1 convolution head has no
    MatMul): the layers kept in float as a fallback."""
    import onnx

    nodes = onnx.load(str(path)).graph.node
    first = next((n.name for n in nodes if n.op_type == "Conv"), None)
    last = next((n.name for n in reversed(nodes) if n.op_type in ("MatMul", "Gemm", "Conv")), None)
    return [n for n in (first, last) if n]


def _input_name(path: Path) -> str:
    import onnx

    g = onnx.load(str(path)).graph
    inits = {i.name for i in g.initializer}
    return next(i.name for i in g.input if i.name not in inits)


def _opset(path: Path) -> int:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _add_metadata(path: Path, value: str) -> None:
    import onnx

    m = onnx.load(str(path))
    m.graph.doc_string = ""  # tf2onnx writes the traced function's name, numbered by a per-process counter
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, {"fer_edge": value})
    onnx.save(m, str(path))


def io_details(path: Path) -> dict[str, Any]:
    """Input/output element types of the graph (float I/O for every ONNX variant fer-edge writes)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    inp = next(i for i in g.input if i.name not in inits)
    return {"input_dtype": _ELEM.get(inp.type.tensor_type.elem_type, "float32"),
            "output_dtype": _ELEM.get(g.output[0].type.tensor_type.elem_type, "float32")}


TOOLCHAIN = register(ModuleToolchain("onnx", sys.modules[__name__]))
