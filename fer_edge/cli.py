"""The `fer-edge` command: a thin click layer. Subcommands load lazily, so `--help` stays fast and the
runtime commands never import TensorFlow. Errors are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import importlib
import os
import sys

import click

from fer_edge import __version__
from fer_edge.errors import FerEdgeError
from fer_edge.extras import missing_message

# name -> "module:attribute"; each subpackage owns its commands in its own cli module.
COMMANDS: dict[str, str] = {
    "data": "fer_edge.data.cli:data",
    "train": "fer_edge.train.cli:train",
    "explain": "fer_edge.train.cli:explain",
    "average": "fer_edge.train.cli:average",
    "convert": "fer_edge.convert.cli:convert",
    "bundle": "fer_edge.convert.cli:bundle",
    "run": "fer_edge.runtime.cli:run",
    "demo": "fer_edge.runtime.cli:demo",
    "serve": "fer_edge.runtime.serve.cli:serve",
    "bench": "fer_edge.benchmarks.cli:bench",
    "report": "fer_edge.benchmarks.cli:report",
    "devices": "fer_edge.devices.cli:devices",
    "doctor": "fer_edge.devices.cli:doctor",
    "deploy": "fer_edge.devices.cli:deploy",
}


class UserError(click.ClickException):
    """A problem the user can fix, shown as one line ("error: ...") with a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(" ".join(message.split("\n")))
        self.exit_code = exit_code

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used; any FerEdgeError becomes one line, and so does
    an ImportError: the extra to install when one provides the module (fer_edge/extras.py), else the module's name
    (the traceback under FER_EDGE_DEBUG)."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                           list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta["fer_edge.command"] = name
        return name, cmd, rest

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FerEdgeError as exc:
            if os.environ.get("FER_EDGE_DEBUG"):
                raise  # the traceback, as for any other error
            raise UserError(str(exc), exc.exit_code) from None
        except ImportError as exc:
            if os.environ.get("FER_EDGE_DEBUG"):
                raise
            raise UserError(missing_message(exc, ctx.meta.get("fer_edge.command")), 1) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._available(n))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:  # the command's own module needs what is not installed: say so when it is run
            if os.environ.get("FER_EDGE_DEBUG"):
                raise
            return _unavailable(name, missing_message(exc, name))

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(COMMANDS[name].split(":")[0]) is not None


def _unavailable(name: str, message: str) -> click.Command:
    """A stand-in for a command that cannot be imported: listed in --help, and one line when run (any arguments)."""

    def fail(args: tuple[str, ...]) -> None:
        raise UserError(message, 1)

    return click.Command(name, callback=fail, help=message, short_help=message, add_help_option=False,
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fer-edge")
def cli() -> None:
    """fer-edge: train, quantize, run and benchmark facial-expression models on edge devices.

    \b
    fer-edge demo                                      # bundled model on bundled faces
    fer-edge data info PATH                            # what a dataset folder holds
    fer-edge train --backbone compact --chain ferplus,jaffe,ckplus --out runs/compact
    fer-edge convert runs/compact --int8               # quantized bundle
    fer-edge run --camera 0                            # live, on a Pi or a Jetson
    fer-edge bench BUNDLE --data ferplus               # size, speed, accuracy lost
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning known errors into one line on stderr and a non-zero exit."""
    try:
        rc = cli.main(args=argv, prog_name="fer-edge", standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # a bad option or argument: one line, like every other bad input
        where = exc.ctx.command_path if exc.ctx is not None else "fer-edge"
        click.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FerEdgeError as exc:
        if os.environ.get("FER_EDGE_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("FER_EDGE_DEBUG"):
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (set FER_EDGE_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
