"""Export formats as data: one frozen entry per (format, precision) saying what it needs and who validates it.

Precision names are the manifest's (``fer_edge.bundle.PRECISIONS``): ``int8`` means int8 weights and activations;
the input/output dtypes are separate manifest fields (a TFLite ``int8`` artifact takes int8 tensors, the ONNX QDQ
and OpenVINO ``int8`` artifacts take float32, TFLite's ``int8_float_io`` is the float-I/O variant).
Under --max-drop a TFLite int8 artifact may fall back to int16 activations (16x8): its precision stays int8
(the weights), ``options.activations`` says int16, and its I/O dtypes and quantization parameters are int16.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from fer_edge.errors import FerEdgeError
from fer_edge.extras import install_line
from fer_edge.registry import Registry

# Which CLI switch turns a precision on; fp32 is the reference and always built.
GROUPS = {"fp32": "reference", "fp16": "fp16", "dynamic": "dynamic", "int8": "int8", "int8_float_io": "int8"}


@dataclass(frozen=True)
class ExportFormat:
    """One format x precision a bundle can hold."""

    format: str                      # manifest format: tflite | onnx | openvino
    precision: str                   # manifest precision
    suffix: str                      # main file suffix
    toolchain: str                   # the Toolchain that builds it (fer_edge.convert.toolchain.TOOLCHAINS)
    backend: str                     # runtime backend that validates it (fer_edge.runtime.backends)
    needs: tuple[str, ...]           # python modules the conversion imports
    calibration: bool = False        # needs calibration faces
    min_agreement: float | None = None  # top-1 agreement with Keras below this is "degraded"
    companions: tuple[str, ...] = ()  # extra files written beside the main one (suffixes)
    unsupported: str = ""            # non-empty: listed, never built, with this reason
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.format}:{self.precision}"

    @property
    def group(self) -> str:
        return GROUPS[self.precision]

    def missing(self) -> str:
        """'' when it can be built here, else why not (an install hint or the unsupported reason)."""
        if self.unsupported:
            return self.unsupported
        absent = [m for m in self.needs if not _importable(m)]
        if absent:
            return f"needs {', '.join(absent)} ({install_line('convert')})"
        return ""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is absent raises for dotted names
        return False


FORMATS: Registry[ExportFormat] = Registry("export format")

_TF = ("tensorflow",)
_ONNX = ("tensorflow", "tf2onnx", "onnx")
_OV = ("tensorflow", "openvino")
_ONNX_FP16 = "onnxruntime.transformers.float16"
for _f in (
    ExportFormat("tflite", "fp32", ".tflite", "tflite", "litert", _TF, min_agreement=0.995,
                 description="TFLite float32 (TFLite builtins only, no Flex ops)"),
    ExportFormat("tflite", "fp16", ".tflite", "tflite", "litert", _TF, min_agreement=0.99,
                 description="TFLite float16 weights, float32 compute and I/O"),
    ExportFormat("tflite", "dynamic", ".tflite", "tflite", "litert", _TF,
                 description="TFLite dynamic range: int8 weights, float I/O"),
    ExportFormat("tflite", "int8", ".tflite", "tflite", "litert", _TF, calibration=True,
                 description="TFLite full integer: int8 weights, activations, input and output"),
    ExportFormat("tflite", "int8_float_io", ".tflite", "tflite", "litert", _TF, calibration=True,
                 description="TFLite full integer inside, float32 input and output"),
    ExportFormat("onnx", "fp32", ".onnx", "onnx", "onnxruntime", _ONNX, min_agreement=0.995,
                 description="ONNX float32 (tf2onnx via keras export)"),
    ExportFormat("onnx", "fp16", ".onnx", "onnx", "onnxruntime", (*_ONNX, _ONNX_FP16), min_agreement=0.99,
                 unsupported="" if _importable(_ONNX_FP16) else
                 "onnx has no float16 converter of its own and onnxconverter-common is not installed",
                 description="ONNX float16 weights and compute, float32 I/O (onnxruntime's float16 converter)"),
    ExportFormat("onnx", "int8", ".onnx", "onnx", "onnxruntime", (*_ONNX, "onnxruntime"), calibration=True,
                 description="ONNX static QDQ int8 (onnxruntime.quantization, per-channel weights), float32 I/O"),
    ExportFormat("openvino", "fp32", ".xml", "openvino", "openvino", _OV, min_agreement=0.995,
                 companions=(".bin",), description="OpenVINO IR float32"),
    ExportFormat("openvino", "fp16", ".xml", "openvino", "openvino", _OV, min_agreement=0.99,
                 companions=(".bin",), description="OpenVINO IR float16 weights"),
    ExportFormat("openvino", "int8", ".xml", "openvino", "openvino", (*_OV, "nncf"), calibration=True,
                 companions=(".bin",), description="OpenVINO IR int8 (NNCF post-training quantization), float32 I/O"),
):
    FORMATS.add(_f.key, _f)

FORMAT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(f.format for _, f in FORMATS.items()))


def offered(format: str) -> list[ExportFormat]:
    """Entries of one format, in registry order."""
    return [f for _, f in FORMATS.items() if f.format == format]


def select(formats: tuple[str, ...] | None, precisions: tuple[str, ...] = (),
           groups: tuple[str, ...] = ()) -> tuple[list[ExportFormat], list[str]]:
    """Entries to build and notes on what was left out and why.

    formats: None = every format whose toolchain is installed. precisions: named explicitly, so each must be
    offered by at least one chosen format (an error otherwise, never silently dropped). groups: 'int8' / 'fp16'
    switches that add those precisions wherever a format offers them. fp32 is always built.
    """
    notes: list[str] = []
    explicit = formats is not None
    names = formats if explicit else FORMAT_NAMES
    for name in names:
        if name not in FORMAT_NAMES:
            FORMATS.get(f"{name}:fp32")  # raises with the valid names and the nearest match
    pool = [e for n in names for e in offered(n)]
    for p in precisions:
        if not any(f.precision == p for f in pool):
            have = sorted({f.precision for f in pool})
            raise FerEdgeError(f"precision {p} is not offered by {', '.join(names)}; they offer {', '.join(have)}")
    wanted = {"fp32", *precisions, *(p for p, g in GROUPS.items() if g in groups)}
    chosen: list[ExportFormat] = []
    for name in names:
        ref_missing = FORMATS.get(f"{name}:fp32").missing()
        if ref_missing and not explicit:
            notes.append(f"{name}: skipped, {ref_missing}")
            continue
        for entry in offered(name):
            if entry.precision not in wanted:
                continue
            if entry.unsupported:
                notes.append(f"{entry.key}: not offered, {entry.unsupported}")
                continue
            chosen.append(entry)
        lacking = [p for p in precisions if not any(e.precision == p for e in offered(name))]
        if lacking:
            notes.append(f"{name}: has no {', '.join(lacking)} variant")
    return chosen, notes
