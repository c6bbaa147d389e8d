"""One small registry for every kind of plug-in (datasets, backbones, formats, backends, detectors, sources)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fer_edge.errors import FerEdgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind. A wrong name fails at once with the valid names and the nearest match."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` adds a class, function or object under ``name``. A class gets
        ``name`` as its ``name`` attribute, so the name is written once (a class of its own that says otherwise is
        refused)."""

        def add(entry: T) -> T:
            if isinstance(entry, type):
                own = entry.__dict__.get("name")
                if own is not None and own != name:
                    raise ValueError(f"{self.kind} {name!r}: class {entry.__name__} says its name is {own!r}")
                entry.name = name
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        key = name.lower()
        if key in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[key] = entry

    def get(self, name: str) -> T:
        key = name.lower()
        if key in self._entries:
            return self._entries[key]
        hint = difflib.get_close_matches(key, self._entries, n=1)
        near = f" Did you mean {hint[0]!r}?" if hint else ""
        raise FerEdgeError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}.{near}")

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __len__(self) -> int:
        return len(self._entries)
