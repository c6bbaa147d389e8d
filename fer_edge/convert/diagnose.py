"""Toolchain noise and failures: run a converter with its output captured, and turn what it says when it
fails into one line naming the op and the fallback."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from fer_edge.convert.formats import FORMATS, ExportFormat


@dataclass
class Captured:
    """What a toolchain printed (C++ logs included) while captured."""

    text: str = ""


@contextlib.contextmanager
def quiet() -> Iterator[Captured]:
    """Capture stdout and stderr at the file-descriptor level (TensorFlow, tf2onnx, NNCF and OpenVINO print
    from C++ and from Python) and hand the text back, so the CLI shows a table, not converter logs."""
    cap = Captured()
    py_buf = io.StringIO()
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = []
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(tmp.fileno(), fd)
        except OSError:  # no usable fds (embedded interpreters): capture at the Python level only
            pass
        try:
            with contextlib.redirect_stdout(py_buf), contextlib.redirect_stderr(py_buf):
                yield cap
        finally:
            for s in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    s.flush()
            for fd, dup in saved:
                os.dup2(dup, fd)
                os.close(dup)
            tmp.seek(0)
            cap.text = tmp.read()[-200_000:].decode("utf-8", "replace") + py_buf.getvalue()[-50_000:]


# (pattern over the exception text and the captured output, what to say, whether the whole format lacks the
# op ("format") or only this precision does ("precision")); {ops} is filled from group 1.
_OPS = (
    (r"TF Select ops: ([\w, ]+)", "op {ops} is not a TFLite builtin (it needs the Flex delegate, which LiteRT "
                                  "on devices lacks)", "format"),
    (r"'tf\.(\w+)' op is neither a custom op nor a flex op", "op {ops} is not a TFLite builtin", "format"),
    (r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(\w+)", "op {ops} has no int8 kernel", "precision"),
    (r"Unsupported ops: Counter\(\{([^}]*)\}\)", "op {ops} has no ONNX conversion in tf2onnx", "format"),
    (r"Could not find an implementation for (\w+)", "ONNX Runtime has no CPU kernel for op {ops} at this precision",
     "precision"),
    (r"No conversion rule found for operations?: ([\w, ]+)", "OpenVINO cannot convert op {ops}", "format"),
    (r"[Cc]annot create (\w+) layer", "OpenVINO cannot create op {ops}", "format"),
)


def reason(exc: BaseException, captured: str, entry: ExportFormat) -> str:
    """One line: which op stopped ``entry`` (when the toolchain says) and what to use instead."""
    text = f"{exc}\n{captured}"
    for pattern, say, lacking in _OPS:
        m = re.search(pattern, text)
        if m:
            ops = ", ".join(dict.fromkeys(re.findall(r"[A-Za-z_]\w*", m.group(1).replace("'", " "))))
            return f"{say.format(ops=ops)}; fallback: {fallback(entry, lacking)}"
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {first[:200]}"


def fallback(entry: ExportFormat, lacking: str = "precision") -> str:
    """What to try instead: another format when the format lacks the op, else a lighter precision of it."""
    if lacking == "format" or entry.precision == "fp32":
        others = sorted({f.format for _, f in FORMATS.items() if f.format != entry.format})
        return f"the {' or '.join(others)} format, or replace the layer that uses it"
    if entry.precision in ("int8", "int8_float_io") and entry.format == "tflite":
        return "tflite dynamic or fp16 (float activations), or onnx/openvino int8"
    return f"{entry.format} fp32, or another format's {entry.precision}"
