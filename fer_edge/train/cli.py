"""`fer-edge train` (the chained transfer, one backbone or a grid) and `fer-edge explain` (Grad-CAM of face images).
Thin: parse, call one library function, print. Every problem is one line and a non-zero exit."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import click

from fer_edge.cli import UserError
from fer_edge.errors import FerEdgeError
from fer_edge.train.cli_options import setting_options
from fer_edge.train.config import ChainConfig
from fer_edge.train.settings import cli_settings


class _OneLineCommand(click.Command):
    """A command whose bad options give one line (no usage block)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise UserError(f"{exc.format_message()} (see fer-edge {self.name} --help)", 2) from None


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter (absl/oneDNN lines on fd 2) silenced (FER_EDGE_DEBUG shows it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    if "tensorflow" not in sys.modules and not os.environ.get("FER_EDGE_DEBUG"):
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            saved = None
        if saved is not None:
            try:
                with open(os.devnull, "w") as null:
                    os.dup2(null.fileno(), 2)
                    with contextlib.suppress(ImportError):
                        import keras  # noqa: F401
                        import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    tf = sys.modules.get("tensorflow")
    if tf is not None and not os.environ.get("FER_EDGE_DEBUG"):
        tf.get_logger().setLevel("ERROR")  # e.g. retracing notes when each fold compiles its own model


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise FerEdgeError(f"--data {v!r}: expected NAME=PATH, e.g. --data ferplus=/data/ferplus")
        out[name.strip().lower()] = path.strip()
    return out


OPTION_KEYS = tuple(s.name for s in cli_settings(ChainConfig) if s.name != "data")  # --data NAME=PATH merges


@click.command("train", cls=_OneLineCommand)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Settings from a .json/.yaml file (same keys, plus per-stage 'stages:'); options given here win.")
@setting_options(ChainConfig)  # one option per setting of ChainConfig and StageConfig (fer_edge/train/settings.py)
@click.pass_context
def train(ctx: click.Context, config_file: str | None, data: tuple[str, ...], **options: object) -> None:
    """Train BACKBONE(S) through the chain of datasets, each stage from the previous stage's best model.

    \b
    fer-edge train --chain ferplus --out runs/compact
    fer-edge train --chain jaffe,ckplus --weights runs/compact/compact/ferplus/model.keras --out runs/jc
    fer-edge train --backbones compact,mobilenetv3small --chain ferplus,ckplus --out runs/grid --epochs 10
    """
    from fer_edge.train import chain, config

    settings = config.read_config_file(config_file) if config_file else {}
    for key in OPTION_KEYS:
        src = ctx.get_parameter_source(key)
        if src is not click.core.ParameterSource.DEFAULT or key not in settings:
            settings[key] = options[key]
    if settings.get("backbones") and ctx.get_parameter_source("backbone") is click.core.ParameterSource.DEFAULT:
        settings.pop("backbone", None)
    if data:
        known = settings.get("data") or {}
        if not isinstance(known, dict):
            raise FerEdgeError(config.data_error(known))
        settings["data"] = {**known, **_pairs(data)}
    cfg = config.config_from_settings(settings)
    chain.preflight(cfg)
    if cfg.distribute == "multiworker" or (cfg.distribute == "auto" and os.environ.get("TF_CONFIG")):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # a lost worker is our one line, not gRPC's errors
    _quiet_tensorflow()
    result = chain.run_chain(cfg)
    if not result.chief:
        click.echo(f"done: this worker trained in step with the chief, which wrote {result.out}")
        return
    click.echo(f"summary: {result.out / 'summary.md'}")
    click.echo((result.out / "summary.md").read_text().split("\n\n")[0])
    if result.failed:
        raise UserError(f"{len(result.failed)} backbone(s) failed: {', '.join(result.failed)}", 1)


@click.command("explain", cls=_OneLineCommand)
@click.argument("model", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), default="explain", show_default=True, metavar="DIR")
@click.option("--classes", metavar="A,B,C", help="Class order of the model's outputs (read from run.json if absent).")
@click.option("--target", metavar="CLASS", help="Explain this class instead of the predicted one.")
def explain(model: str, images: tuple[str, ...], out: str, classes: str | None, target: str | None) -> None:
    """Grad-CAM heat maps of MODEL for face IMAGE files (each taken as a face crop, resized to the model input)."""
    from fer_edge.train.gradcam import explain as run_explain
    from fer_edge.train.gradcam import save_explanation

    if not Path(model).exists():
        raise FerEdgeError(f"{model}: no such model file")
    for p in images:
        if not Path(p).is_file():
            raise FerEdgeError(f"{p}: no such image file")
    _quiet_tensorflow()
    names = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else None
    results = run_explain(model, list(images), names, target)
    used: set[str] = set()
    for e in results:
        stem = Path(e.source).stem
        name, n = f"{stem}_gradcam.png", 1
        while name in used:
            n += 1
            name = f"{stem}_{n}_gradcam.png"
        used.add(name)
        path = save_explanation(e, Path(out) / name)
        click.echo(f"{e.source}: {e.caption()} -> {path}")


@click.command("average", cls=_OneLineCommand)
@click.argument("stage", type=click.Path())
@click.option("--epochs", "counts", required=True, metavar="N[,N...]",
              help="How many of the newest kept epochs to average; several counts = one average each.")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Output folder: new, empty or an earlier average's (replaced whole)  [default: STAGE/average].")
@click.option("--data", multiple=True, metavar="NAME=PATH",
              help="The stage's dataset folder (default: the one the run read, then $FER_EDGE_DATA/<name>).")
def average(stage: str, counts: str, out: str | None, data: tuple[str, ...]) -> None:
    """Average the epoch weights a finished training STAGE folder kept (fer-edge train --swa N keeps its last N),
    BatchNorm recomputed; keeps the variant best on validation, the stage's own model included, in --out.

    \b
    fer-edge train --config continue.yaml --swa 8 --out runs/long
    fer-edge average runs/long/compact/ferplus --epochs 2,4,6,8 --out runs/long-average
    """
    from fer_edge.train.average import average_stage

    try:
        numbers = [int(n) for n in counts.split(",") if n.strip()]
    except ValueError:
        raise FerEdgeError(f"--epochs {counts!r}: expected counts like 4 or 2,4,6,8") from None
    _quiet_tensorflow()
    res = average_stage(stage, numbers, out, _pairs(data) or None)
    for name, s in res.variants.items():
        test = f"  test {s['test_accuracy']:.4f}" if "test_accuracy" in s else ""
        click.echo(f"{name}: val {s['val_accuracy']:.4f}{test}")
    click.echo(f"kept {res.kept} (of {res.epochs_kept} kept epochs) -> {res.out / 'model.keras'}")
