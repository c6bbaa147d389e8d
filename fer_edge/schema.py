"""Checking a JSON document read from disk against its JSON schema: one error line naming the first problem (where
in the document, what is wrong), never a traceback, and no NaN or infinity anywhere. Used by the bundle manifest and
the run record."""

from __future__ import annotations

import math
from typing import Any

from fer_edge.errors import FerEdgeError, ModelError


def check(doc: Any, schema: dict[str, Any], where: str, what: str, error: type[FerEdgeError] = ModelError,
          finite: tuple[str, ...] | None = None) -> None:
    """``doc`` against ``schema`` and free of NaN/infinity (only under the top-level keys ``finite`` when given),
    else ``error`` '{where}: invalid {what} at PATH: why'."""
    import jsonschema

    try:
        exc = jsonschema.exceptions.best_match(_validator(schema).iter_errors(doc))
    except RecursionError:
        raise error(f"{where}: invalid {what} (nested too deeply)") from None
    if exc is not None:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise error(f"{where}: invalid {what} at {path}: {short(exc.message)}") from None
    bad = non_finite(doc) if finite is None else next(
        (p for p in (non_finite(doc[k], k) for k in finite if k in doc) if p is not None), None)
    if bad is not None:
        raise error(f"{where}: invalid {what} at {bad or '(top)'}: NaN or infinity is not a value")


def _strict_integer(_checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validator(schema: dict[str, Any]) -> Any:
    """A validator for ``schema`` whose "integer" is an int only: JSON Schema counts 48.0 as an integer, which
    then breaks every ``range``/``np.zeros`` that reads the value."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    strict = jsonschema.validators.extend(cls, type_checker=cls.TYPE_CHECKER.redefine("integer", _strict_integer))
    return strict(schema)


def non_finite(obj: Any, path: str = "") -> str | None:
    """Path of the first NaN or infinite number in a JSON-like object, or None."""
    stack = [(obj, path)]
    while stack:
        o, p = stack.pop()
        if isinstance(o, float) and not math.isfinite(o):
            return p
        if isinstance(o, dict):
            stack += [(v, f"{p}/{k}".lstrip("/")) for k, v in o.items()]
        elif isinstance(o, list):
            stack += [(v, f"{p}/{i}".lstrip("/")) for i, v in enumerate(o)]
    return None


def short(text: object, n: int = 160) -> str:
    """``text`` on one line, at most ``n`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."
