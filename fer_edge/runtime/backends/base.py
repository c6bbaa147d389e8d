"""What an inference backend is: a registry entry that opens one artifact format and runs raw tensors."""

from __future__ import annotations

import importlib.util
from typing import ClassVar, Protocol

import numpy as np

from fer_edge.errors import BackendUnavailable
from fer_edge.registry import Registry


class Backend(Protocol):
    """An opened model. ``invoke`` takes and returns tensors in the model's own dtypes (no (de)quantization)."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # artifact formats it can run, in order of preference
    package: ClassVar[str]              # pip package to install
    priority: ClassVar[int]             # lower = tried first by --backend auto

    @classmethod
    def is_available(cls) -> bool: ...

    @classmethod
    def version(cls) -> str: ...

    def invoke(self, x: np.ndarray) -> np.ndarray: ...


class BackendBase:
    """Shared helpers for backend classes (import checks, install hints)."""

    name: ClassVar[str] = ""
    formats: ClassVar[tuple[str, ...]] = ()
    package: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()  # importable module names, any one suffices
    priority: ClassVar[int] = 100

    @classmethod
    def is_available(cls) -> bool:
        return any(importlib.util.find_spec(m) is not None for m in cls.modules)

    @classmethod
    def require(cls) -> None:
        if not cls.is_available():
            raise BackendUnavailable(f"backend {cls.name} is not installed: pip install {cls.package}")

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import PackageNotFoundError, version

        for dist in (cls.package, *cls.modules):
            try:
                return version(dist)
            except PackageNotFoundError:
                continue
        return "unknown"


BACKENDS: Registry[type[BackendBase]] = Registry("backend")
