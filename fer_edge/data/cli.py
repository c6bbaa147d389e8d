"""`fer-edge data`: what a dataset folder holds (info), a picture of it (show), and its cache (prepare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


class ProgressBar:
    """A ``progress(done, total)`` callback drawing a tqdm bar (with ETA) on stderr."""

    def __init__(self, desc: str, disable: bool | None = None, file: Any = None) -> None:
        self.desc = desc
        self.disable = disable  # None: drawn on a terminal only, never into logs or captured output
        self.file = file
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="img", dynamic_ncols=True, leave=False,
                            disable=self.disable, file=self.file)
        if self.bar.disable:
            return
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _formats() -> list[str]:
    from fer_edge.data import layouts

    return layouts()


path_arg = click.argument("path", type=click.Path(path_type=Path))
format_opt = click.option("--format", "fmt", type=click.Choice(_formats()), default=None,
                          help="Force a layout instead of detecting it.")
strict_opt = click.option("--strict", is_flag=True, help="Fail on the first unreadable image instead of skipping it.")
cache_opt = click.option("--no-cache", "no_cache", is_flag=True,
                         help="Read the files; neither use nor write the cache.")


def _load(path: Path, fmt: str | None, strict: bool, no_cache: bool) -> Any:
    from fer_edge.data import load_dataset

    bar = ProgressBar(f"reading {path.name}")
    try:
        return load_dataset(path, format=fmt, strict=strict, cache=not no_cache, progress=bar)
    finally:
        bar.close()


@click.group()
def data() -> None:
    """Inspect and prepare facial-expression datasets (FERPlus, FER2013, RAF-DB, CK+, JAFFE, class folders)."""


@data.command()
@path_arg
@format_opt
@strict_opt
@cache_opt
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path: Path, fmt: str | None, strict: bool, no_cache: bool, as_json: bool) -> None:
    """Layout, classes, faces per split and class, subjects, image size and problems of PATH."""
    from fer_edge.data import format_summary, summary

    s = summary(_load(path, fmt, strict, no_cache))
    click.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@data.command()
@path_arg
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Image to write (.png/.jpg).")
@click.option("--per-class", type=click.IntRange(1, 64), default=8, show_default=True, help="Faces per class.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None, help="Only this official split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which random faces.")
@format_opt
@cache_opt
def show(path: Path, out: Path, per_class: int, split: str | None, seed: int, fmt: str | None, no_cache: bool) -> None:
    """Write a grid of sample faces of PATH, one row per class."""
    from fer_edge.data.grid import save_grid
    from fer_edge.errors import DataError

    ds = _load(path, fmt, False, no_cache)
    if split:
        if ds.split is None:
            raise DataError(f"{path}: {ds.name} has no official split; drop --split")
        ds = ds.only_split(split)
    click.echo(f"wrote {save_grid(ds, out, per_class=per_class, seed=seed)}")


@data.command()
@path_arg
@format_opt
@strict_opt
@click.option("--force", is_flag=True, help="Rebuild the cache even if it is up to date.")
def prepare(path: Path, fmt: str | None, strict: bool, force: bool) -> None:
    """Read PATH once and cache it, so later loads take well under two seconds."""
    import time

    from fer_edge.data import prepare as build_cache

    bar = ProgressBar(f"reading {path.name}")
    start = time.perf_counter()
    try:
        ds, target, fresh = build_cache(path, format=fmt, strict=strict, progress=bar, force=force)
    finally:
        bar.close()
    what = "cached" if fresh else "already cached"
    click.echo(f"{ds.name}: {len(ds):,} faces {what} in {target} ({time.perf_counter() - start:.1f} s)")
    for p in ds.problems:
        click.echo(f"  {p}")
