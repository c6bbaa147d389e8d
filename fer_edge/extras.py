"""Which optional extra provides which import, so a missing one is named with its install line, not a traceback."""

from __future__ import annotations

from fer_edge.errors import FerEdgeError

# extra -> (what it is called, the top-level modules it provides); smallest extras first
EXTRAS: dict[str, tuple[str, frozenset[str]]] = {
    "onnx": ("ONNX Runtime", frozenset({"onnxruntime"})),
    "openvino": ("OpenVINO", frozenset({"openvino"})),
    "serve": ("serve", frozenset({"aiohttp", "prometheus_client", "paho"})),
    "train": ("training", frozenset({"tensorflow", "keras", "matplotlib", "yaml"})),
    "convert": ("conversion", frozenset({"tensorflow", "keras", "matplotlib", "yaml", "onnx", "tf2onnx", "nncf",
                                          "onnxruntime", "openvino"})),
}
# the extra a command is documented with (its own, when the missing module is part of it)
COMMAND_EXTRA = {"train": "train", "explain": "train", "average": "train", "convert": "convert", "serve": "serve"}


class MissingExtra(FerEdgeError):
    """An optional extra that is not installed; the message has its install line."""

    exit_code = 1


def install_line(extra: str, *more: str) -> str:
    """How to install an extra (or any one of several): fer-edge is on no package index, so from the checkout
    (``-e``, like the README)."""
    return "pip install -e " + " or ".join(f'".[{e}]"' for e in (extra, *more)) + " (in the fer-edge checkout)"


def extra_for(module: str | None, command: str | None = None) -> str | None:
    """The extra to install for a missing ``module`` (dotted names allowed), or None if no extra provides it."""
    top = (module or "").split(".")[0]
    own = COMMAND_EXTRA.get(command or "")
    if own and top in EXTRAS[own][1]:
        return own
    return next((name for name, (_, mods) in EXTRAS.items() if top in mods), None)


def missing_message(exc: ImportError, command: str | None) -> str:
    """One line for an ImportError under ``fer-edge COMMAND``: the extra to install, or the module that failed."""
    name = exc.name or str(exc).rsplit(" ", 1)[-1].strip("'\"")
    where = f"fer-edge {command}" if command else "fer-edge"
    extra = extra_for(name, command)
    if extra:
        return f"{where} needs the {EXTRAS[extra][0]} extra: {install_line(extra)}"
    return f"{where}: cannot import {name} ({exc}); reinstall fer-edge, or set FER_EDGE_DEBUG=1 for the traceback"
