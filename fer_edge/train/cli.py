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
from fer_edge.train.backbones import BACKBONES
from fer_edge.train.config import STAGES
from fer_edge.train.distribute import DISTRIBUTE
from fer_edge.train.precision import PRECISIONS
from fer_edge.train.trainer import AUGMENT_LEVELS, StageConfig

_D = StageConfig()


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


OPTION_KEYS = ("backbone", "backbones", "chain", "out", "weights", "epochs", "fold_epochs", "batch_size", "lr",
               "input_size", "soft_labels", "class_weight", "augment", "adversarial", "adv_epsilon", "folds",
               "val_fraction", "limit", "resume", "seed", "keep_fold_models", "precision", "swa", "teacher",
               "teacher_weight", "distribute")


@click.command("train", cls=_OneLineCommand)
@click.option("--backbone", type=click.Choice(BACKBONES.names(), case_sensitive=False), default="compact",
              show_default=True, help="Backbone to train (see the list).")
@click.option("--backbones", metavar="A,B,C", help="Run a grid of backbones (comma list); writes OUT/summary.md.")
@click.option("--chain", default="ferplus", show_default=True, metavar="STAGES",
              help=f"Stages in order, comma-separated, from: {', '.join(STAGES.names())}.")
@click.option("--data", multiple=True, metavar="NAME=PATH",
              help="Dataset folder of a stage (default: $FER_EDGE_DATA/<name>, then ../shared/data/<name>).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Settings from a .json/.yaml file (same keys, plus per-stage 'stages:'); options given here win.")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR", help="Run folder, e.g. runs/compact.")
@click.option("--weights", default="none", show_default=True, metavar="imagenet|none|PATH",
              help="Start of the first stage: ImageNet weights, random, or a .keras model (e.g. a FERPlus run).")
@click.option("--epochs", type=click.IntRange(min=1), default=_D.epochs, show_default=True,
              help="Epochs per stage (the model handed on).")
@click.option("--fold-epochs", type=click.IntRange(min=1), default=None,
              help="Epochs per cross-validation fold  [default: min(epochs, 10)].")
@click.option("--batch-size", type=click.IntRange(min=1), default=_D.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_D.lr, show_default=True)
@click.option("--input-size", type=click.IntRange(min=8), default=None, help="Input side in px  [default: backbone's].")
@click.option("--soft-labels/--hard-labels", default=_D.soft_labels, show_default=True,
              help="Train on FERPlus vote distributions, or on majority labels.")
@click.option("--class-weight", type=click.Choice(["none", "sqrt", "balanced"]), default=_D.class_weight,
              show_default=True)
@click.option("--augment", type=click.Choice(AUGMENT_LEVELS), default=_D.augment, show_default=True,
              help="heavy: flip, rotate 30, shift/shear/zoom 20%, brightness x0.2-1.2; strong: milder, plus "
                   "contrast and erasing; light: flip and small shift.")
@click.option("--adversarial", type=click.FloatRange(min=0), default=_D.adversarial, show_default=True,
              help="Weight of the loss on FGSM neighbours (0 = off).")
@click.option("--adv-epsilon", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=_D.adv_epsilon,
              show_default=True, help="FGSM step (input range [0, 1]); also the epsilon of the reported FGSM accuracy.")
@click.option("--swa", type=click.IntRange(min=0), default=_D.swa, show_default=True, metavar="N",
              help="Average the weights of the last N epochs (BatchNorm recomputed); kept if it validates better. "
                   "The N epochs stay in ckpt/swa/ for fer-edge average.")
@click.option("--teacher", default=_D.teacher, metavar="PATH",
              help="Distill: a stronger .keras model's flip-averaged predictions join the training targets; "
                   "several paths separated by commas = their ensemble's mean.")
@click.option("--teacher-weight", type=click.FloatRange(0, 1), default=_D.teacher_weight, show_default=True,
              help="Share of the teacher's predictions in the targets.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_D.precision, show_default=True,
              help="auto = mixed_float16 where a GPU is seen, else float32 (models are saved as float32).")
@click.option("--distribute", type=click.Choice(DISTRIBUTE), default="auto", show_default=True,
              help="tf.distribute: mirrored = this host's GPUs, multiworker = the hosts in TF_CONFIG, auto = "
                   "multiworker with a TF_CONFIG cluster, mirrored with 2+ GPUs, else none. --batch-size is per "
                   "replica; the LR is scaled by sqrt(replicas).")
@click.option("--folds", type=click.IntRange(min=2), default=None,
              help="Subject folds for CV stages  [default: 10 for CK+, leave-one-subject-out for JAFFE].")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Share of training subjects held out for validation.")
@click.option("--limit", type=click.IntRange(min=10), default=None, help="At most N faces per split (quick runs).")
@click.option("--resume", is_flag=True, help="Continue a stopped run: finished stages/folds are reused.")
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option("--keep-fold-models", is_flag=True, help="Keep each fold's model and checkpoints.")
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
        settings["data"] = {**(settings.get("data") or {}), **_pairs(data)}
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
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR", help="Output folder  [default: STAGE/average].")
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
