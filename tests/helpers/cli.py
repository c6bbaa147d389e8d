"""Running `fer-edge` in-process for the tests (click's CliRunner): bad input must be one line, never a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from fer_edge.cli import cli


def one_line_error(args: list[str]) -> str:
    """The one line `fer-edge ARGS` prints when it refuses them (asserted: non-zero exit, one line, no traceback)."""
    res = CliRunner().invoke(cli, args)
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert res.exit_code != 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]
