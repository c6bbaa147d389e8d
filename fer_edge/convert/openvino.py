"""OpenVINO IR (.xml + .bin) from the SavedModel: fp32, fp16 weights, and int8 with NNCF post-training
quantization (``nncf.quantize``; ``nncf.quantize_with_accuracy_control`` as the last resort under --max-drop)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.convert.context import ExportContext, Exported
from fer_edge.convert.formats import ExportFormat
from fer_edge.convert.toolchain import ModuleToolchain, register

_NUMBERED = re.compile(r"^[A-Za-z]+_\d+|_\d+$")


def attempts(entry: ExportFormat, ctx: ExportContext) -> list[dict[str, Any]]:
    """Symmetric (performance) preset with full bias correction first (fast bias correction lost 0.5 points on
    the default model, full 0.15); under --max-drop the first conv and the classifier kept in float, then
    NNCF's accuracy control."""
    if entry.precision != "int8":
        return [{}]
    out: list[dict[str, Any]] = [{"preset": "performance", "bias_correction": "full"},
                                 {"preset": "performance", "bias_correction": "full", "float_layers": "first_last"}]
    if ctx.max_drop_points is not None and ctx.tune is not None:
        out.append({"preset": "performance", "bias_correction": "full", "accuracy_control": True})
    return out


def export(entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> Exported:
    import openvino as ov

    model = ov.convert_model(str(ctx.saved_model()))
    model.set_rt_info("saved_model", ["conversion_parameters", "input_model"])  # not the random scratch path
    opts: dict[str, Any] = {"converter": f"openvino.convert_model(SavedModel) (openvino {ov.__version__})"}
    compress = entry.precision != "fp32"
    if entry.precision == "int8":
        model, q = _quantize(entry, ctx, model, attempt)
        opts.update(q)
    opts["weights"] = {"fp32": "float32", "fp16": "float16"}.get(entry.precision, "int8 (others float16)")
    _stable_names(model)
    model.set_rt_info(ctx.metadata(entry), ["fer_edge", "manifest"])
    ov.save_model(model, str(dst), compress_to_fp16=compress)
    return Exported((dst, dst.with_suffix(".bin")), opts, **io_details(model))


def _quantize(entry: ExportFormat, ctx: ExportContext, model: Any,
              attempt: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import nncf

    x = ctx.require_calib(entry)
    calib = nncf.Dataset([x[i : i + 1] for i in range(len(x))])
    preset = {"performance": nncf.QuantizationPreset.PERFORMANCE,
              "mixed": nncf.QuantizationPreset.MIXED}[attempt.get("preset", "performance")]
    fast = attempt.get("bias_correction", "full") == "fast"
    ignored = _first_last(model) if attempt.get("float_layers") == "first_last" else []
    opts: dict[str, Any] = {"quantizer": f"nncf.quantize (nncf {nncf.__version__})",
                            "preset": attempt.get("preset", "performance"), "activations": "int8",
                            "bias_correction": "fast" if fast else "full",
                            "calibration": {**ctx.calib_info, "method": "nncf min/max statistics"}}
    if ignored:
        opts["float_layers"] = ignored
    scope = nncf.IgnoredScope(names=ignored) if ignored else None
    if not attempt.get("accuracy_control"):
        return nncf.quantize(model, calib, preset=preset, subset_size=len(x), fast_bias_correction=fast,
                             ignored_scope=scope), opts
    assert ctx.tune is not None and ctx.max_drop_points is not None
    tx, ty = ctx.tune
    val = nncf.Dataset([(tx[i : i + 1], int(ty[i])) for i in range(len(tx))])
    budget = ctx.max_drop_points / 2  # on validation faces, leaving a margin for the held-out evaluation
    q = nncf.quantize_with_accuracy_control(
        model, calib, val, _accuracy, max_drop=budget / 100.0, preset=preset, subset_size=len(x),
        fast_bias_correction=fast)
    opts.update(quantizer=f"nncf.quantize_with_accuracy_control (nncf {nncf.__version__})",
                accuracy_control={"max_drop_points": budget, "validation_faces": len(tx)})
    return q, opts


def _first_last(model: Any) -> list[str]:
    """Friendly names of the first Convolution and the classifier (the last MatMul or Convolution: a 1x1 convolution
    head has no MatMul): the layers kept in float as a fallback."""
    ops = list(model.get_ordered_ops())
    first = next((o.get_friendly_name() for o in ops if o.get_type_name() == "Convolution"), None)
    last = next((o.get_friendly_name() for o in reversed(ops) if o.get_type_name() in ("MatMul", "Convolution")), None)
    return [n for n in (first, last) if n]


def _accuracy(compiled: Any, items: Any) -> tuple[float, list[float]]:
    """NNCF validation function: top-1 accuracy and per-face correctness."""
    hits = [float(np.argmax(compiled(x)[0]) == y) for x, y in items]
    return (float(np.mean(hits)) if hits else 0.0), hits


def _stable_names(model: Any) -> None:
    """Rename layers OpenVINO and NNCF numbered from per-process counters (Constant_209, Multiply_4205) by their
    position in the graph, so the same model gives the same .xml bytes whatever ran before in the process."""
    for i, op in enumerate(model.get_ordered_ops()):
        kind = op.get_type_name()
        if kind not in ("Parameter", "Result") and _NUMBERED.search(op.get_friendly_name()):
            op.set_friendly_name(f"{kind}_{i}")


def io_details(model: Any) -> dict[str, Any]:
    """Element types of the first input and output (float for every IR fer-edge writes)."""
    return {"input_dtype": np.dtype(model.inputs[0].get_element_type().to_dtype()).name,
            "output_dtype": np.dtype(model.outputs[0].get_element_type().to_dtype()).name}


TOOLCHAIN = register(ModuleToolchain("openvino", sys.modules[__name__]))
