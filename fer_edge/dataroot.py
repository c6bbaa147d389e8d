"""Dataset arguments that may be a path or a bare name: ``--data ferplus`` is the ``ferplus`` folder under the
data root ($FER_EDGE_DATA, else ../shared/data beside the working folder or the source checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import click

ALIASES = {"ckplus": "ckplus48", "ck+": "ckplus48", "raf-db": "rafdb", "fer2013plus": "ferplus"}


def data_roots() -> list[Path]:
    """Where bare dataset names are looked up, first match wins."""
    roots = [Path(os.environ["FER_EDGE_DATA"])] if os.environ.get("FER_EDGE_DATA") else []
    roots += [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data",
              Path(__file__).resolve().parents[2] / "shared" / "data"]
    out, seen = [], set()
    for r in roots:
        if r.resolve() not in seen:
            seen.add(r.resolve())
            out.append(r)
    return out


def resolve_data(value: str) -> Path:
    """An existing path as is; a bare name (no '/') as the folder of that name under the first data root holding it.
    Anything else is a click.BadParameter naming where it looked."""
    p = Path(value)
    if p.exists():
        return p
    if "/" in value or os.sep in value or value.startswith("."):
        raise click.BadParameter(f"{value!r}: no such file or folder")
    names = [value, ALIASES.get(value.lower(), value.lower())]
    for root in data_roots():
        for name in dict.fromkeys(names):
            if (root / name).exists():
                return root / name
    looked = ", ".join(str(r) for r in data_roots())
    raise click.BadParameter(f"{value!r} is neither a path nor a dataset folder under the data root ({looked}); "
                             "give the dataset's path or set FER_EDGE_DATA")


def data_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback for a --data option."""
    return None if value is None else str(resolve_data(value))
