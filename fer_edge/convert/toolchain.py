"""The conversion toolchain plug-in kind: what a toolchain does (``Toolchain``) and the registry of them.

A toolchain builds the artifacts of one export format (``formats.ExportFormat.toolchain`` names it): ``attempts``
lists the ways to build an entry, the default first (the others are tried under --max-drop), and ``export``
writes one attempt's files. One module per toolchain (``tflite``, ``onnx``, ``openvino``) registers itself with
``register(ModuleToolchain(name, sys.modules[__name__]))``; heavy libraries are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fer_edge.registry import Registry

if TYPE_CHECKING:
    from fer_edge.convert.context import ExportContext, Exported
    from fer_edge.convert.formats import ExportFormat


@runtime_checkable
class Toolchain(Protocol):
    """Builds the artifacts of one export format."""

    name: str

    def attempts(self, entry: ExportFormat, ctx: ExportContext) -> list[dict[str, Any]]:
        """Ways to build ``entry``, the default first; each is a JSON-able dict recorded in the report."""
        ...

    def export(self, entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> Exported:
        """Write ``entry`` built as ``attempt`` to ``dst`` (plus companions); the files and what was used."""
        ...


@dataclass(frozen=True)
class ModuleToolchain:
    """A toolchain made of a module's ``attempts`` and ``export`` functions (looked up at each call)."""

    name: str
    module: ModuleType

    def attempts(self, entry: ExportFormat, ctx: ExportContext) -> list[dict[str, Any]]:
        return self.module.attempts(entry, ctx)

    def export(self, entry: ExportFormat, ctx: ExportContext, dst: Path, attempt: dict[str, Any]) -> Exported:
        return self.module.export(entry, ctx, dst, attempt)


TOOLCHAINS: Registry[Toolchain] = Registry("conversion toolchain")


def register(toolchain: Toolchain) -> Toolchain:
    """Add ``toolchain`` under its own name (the name is written once, in the entry)."""
    TOOLCHAINS.add(toolchain.name, toolchain)
    return toolchain
