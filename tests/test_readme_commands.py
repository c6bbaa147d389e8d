"""Every `fer-edge` command written in README.md, in docs/*.md and in the commands' own --help examples parses as
written: each subcommand exists, each option exists, required options are there and values convert. A path that is
missing here (runs/, a dataset) is the only thing let through, as it would be on the machine the example is for.
Commands in code blocks are parsed strictly; those in inline code only for command and option names (they hold
placeholders such as N or PATH). A few cheap ones are also run for real."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fer_edge.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md"))}
ENV_WORD = re.compile(r"[A-Z_][A-Z0-9_]*=.*")


def commands_in(text: str) -> list[list[str]]:
    """The argv (after `fer-edge`) of every fer-edge command in shell text: continuations joined, comments, env
    assignments and the commands before or after `&&`, `;` or `|` dropped."""
    out = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        for part in re.split(r"&&|;|\|", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            while words and ENV_WORD.fullmatch(words[0]):
                words = words[1:]
            if words[:1] == ["fer-edge"] and len(words) > 1:
                out.append(words[1:])
    return out


def readme_blocks(text: str = README) -> list[list[str]]:
    return [c for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S) for c in commands_in(block)]


def readme_inline(text: str = README) -> list[list[str]]:
    spans = re.findall(r"(?<!`)`(fer-edge [^`]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S))
    return [c for s in spans for c in commands_in(" ".join(s.split())) if not _alternatives(c)]  # may wrap a line


def docs_commands(strict: bool) -> list[tuple[str, list[str]]]:
    """(docs file, argv) of the commands in docs/*.md: code blocks when strict, else inline code."""
    find = readme_blocks if strict else readme_inline
    return [(name, argv) for name, text in DOCS.items() for argv in find(text)]


def _alternatives(argv: list[str]) -> bool:
    """`fer-edge data info/show/prepare PATH`: several subcommands named at once, not a command line."""
    group = cli.get_command(click.Context(cli), argv[0])
    return isinstance(group, click.Group) and len(argv) > 1 and "/" in argv[1]


def help_examples() -> list[tuple[str, list[str]]]:
    """(command path, argv) of the fer-edge lines in every command's help text."""
    found: list[tuple[str, list[str]]] = []

    def walk(cmd: click.Command, path: str) -> None:
        found.extend((path, argv) for argv in commands_in(cmd.help or ""))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), f"{path} {name}")

    walk(cli, "fer-edge")
    return found


def parse(argv: list[str], strict: bool = True) -> click.Context:
    """Resolve argv down to its leaf command and parse it the way `fer-edge` would, without running it."""
    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="fer-edge")
    args = list(argv)
    while isinstance(cmd, click.Group):
        assert args, f"fer-edge {' '.join(argv)}: a group without a subcommand"
        name = args.pop(0)
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"fer-edge {' '.join(argv)}: no command {name!r}"
        cmd, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    try:
        return cmd.make_context(ctx.info_name, args, parent=ctx.parent, resilient_parsing=not strict)
    except click.BadParameter as exc:  # a value: only a path that is absent here may fail
        if not strict or _absent_path(exc):
            return ctx
        raise AssertionError(f"fer-edge {' '.join(argv)}: {exc.format_message()}") from None
    except click.UsageError as exc:  # no such option, missing option, extra arguments
        raise AssertionError(f"fer-edge {' '.join(argv)}: {exc.format_message()}") from None


def _absent_path(exc: click.BadParameter) -> bool:
    msg = exc.format_message()
    return any(s in msg for s in ("does not exist", "no such file or folder", "neither a path nor a dataset"))


def test_readme_has_commands() -> None:
    blocks, inline = readme_blocks(), readme_inline()
    assert len(blocks) >= 15 and len(inline) >= 20
    assert {argv[0] for argv in blocks + inline} >= {"train", "convert", "run", "bench", "deploy", "demo", "report"}


@pytest.mark.parametrize("argv", readme_blocks(), ids=lambda a: " ".join(a)[:70])
def test_readme_code_block_command_parses(argv: list[str]) -> None:
    parse(argv)


@pytest.mark.parametrize("argv", readme_inline(), ids=lambda a: " ".join(a)[:70])
def test_readme_inline_command_parses(argv: list[str]) -> None:
    parse(argv, strict=False)


def test_docs_have_commands() -> None:
    assert len(docs_commands(strict=True)) >= 15 and len(docs_commands(strict=False)) >= 20


@pytest.mark.parametrize(("where", "argv"), docs_commands(strict=True), ids=lambda x: " ".join(x)[:70]
                         if isinstance(x, list) else x)
def test_docs_code_block_command_parses(where: str, argv: list[str]) -> None:
    parse(argv)


@pytest.mark.parametrize(("where", "argv"), docs_commands(strict=False), ids=lambda x: " ".join(x)[:70]
                         if isinstance(x, list) else x)
def test_docs_inline_command_parses(where: str, argv: list[str]) -> None:
    parse(argv, strict=False)


@pytest.mark.parametrize(("where", "argv"), help_examples(), ids=lambda x: " ".join(x)[:70] if isinstance(x, list)
                         else x)
def test_help_example_parses(where: str, argv: list[str]) -> None:
    parse(argv)


def test_the_parser_catches_what_it_should() -> None:
    """The check itself fails on a wrong option, a missing required option and a bad value."""
    for bad in (["run", "--bundle", "b"], ["deploy", "--device", "rpi5", "--out", "d"], ["run", "--every", "x"],
                ["nosuch"], ["bench", "b", "--threads"]):
        with pytest.raises(AssertionError):
            parse(bad)
    parse(["convert", "runs/compact", "--int8"])  # no --out: a default folder
    parse(["bench", "b", "--data", "nosuch-here"])  # a dataset name not on this machine


class _Built(Exception):
    """Raised by the stubbed preflight: carries the ChainConfig the train command built."""

    def __init__(self, cfg: object) -> None:
        super().__init__("built")
        self.cfg = cfg


PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*(?:[,.=][A-Z_]*)*")  # N, PATH, NAME=PATH: an inline command's placeholders


def train_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every complete `fer-edge train` command: code blocks, help examples, and inline ones
    without placeholders."""
    found = [("README.md", a) for a in readme_blocks()] + [("README.md", a) for a in readme_inline()]
    found += docs_commands(strict=True) + docs_commands(strict=False) + help_examples()
    return [(w, a) for w, a in found if a[0] == "train" and a[1:2] != [] and a[1].startswith("--")
            and "--help" not in a and not any(PLACEHOLDER.fullmatch(x) for x in a[1:])]


def build_train_config(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> object | None:
    """Run the `fer-edge train` command as written up to the point where it would train: the config (file and
    options) is read and built and validated for real; returns the ChainConfig, or None when only a path that is
    absent here (a config file elsewhere, a runs/ model) stopped it. Any other problem fails."""
    from fer_edge.errors import FerEdgeError
    from fer_edge.train import chain

    def preflight(cfg: object, given: tuple[str, ...] = ()) -> dict:
        try:
            cfg.validate()
        except FerEdgeError as exc:
            if "no such model file" not in str(exc):
                raise
        raise _Built(cfg)

    def run_chain(*args: object, **kwargs: object) -> None:
        raise AssertionError("fer-edge train would have trained")

    monkeypatch.setattr(chain, "preflight", preflight)
    monkeypatch.setattr(chain, "run_chain", run_chain)
    monkeypatch.chdir(REPO)
    try:
        cli.main(args=list(argv), prog_name="fer-edge", standalone_mode=False)
    except _Built as built:
        return built.cfg
    except click.ClickException as exc:
        msg = exc.format_message()
        if re.search(r"--config \S+: no such file", msg):
            return None
        raise AssertionError(f"fer-edge {' '.join(argv)}: {msg}") from None
    raise AssertionError(f"fer-edge {' '.join(argv)}: returned without building a config")


def test_train_commands_found() -> None:
    assert len(train_commands()) >= 12


@pytest.mark.parametrize(("where", "argv"), train_commands(), ids=lambda x: " ".join(x)[:70] if isinstance(x, list)
                         else x)
def test_train_command_builds_its_config(where: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every train command in the docs builds its config as written (--out given or in the config file, ...)."""
    cfg = build_train_config(argv, monkeypatch)
    if cfg is not None:
        assert cfg.out and cfg.chain


@pytest.mark.parametrize("argv", [["train", "--backbone", "compact", "--chain", "ferplus"],
                                  ["train", "--chain", "ferplus", "--out", "r", "--epochs", "0"],
                                  ["train", "--chain", "ferplus", "--out", "r", "--val-fraction", "1.5"]])
def test_the_train_check_catches_what_parsing_does_not(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A train command without --out parses (click does not know --out is required) but does not build."""
    if "--out" not in argv:
        parse(argv)
    with pytest.raises(AssertionError):
        build_train_config(argv, monkeypatch)
    argv_ok = ["train", "--chain", "ferplus", "--out", "r"]
    assert build_train_config(argv_ok, monkeypatch).out == "r"


def test_bare_dataset_name_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ferplus").mkdir()
    monkeypatch.setenv("FER_EDGE_DATA", str(tmp_path))
    ctx = parse(["bench", "fer_edge/assets/default_bundle", "--data", "ferplus"])
    assert ctx.params["data"] == str(tmp_path / "ferplus")


@pytest.mark.parametrize("argv", [["devices", "show", "rpi5"], ["devices", "list"], ["doctor", "--no-camera"],
                                  ["bundle", "inspect", "fer_edge/assets/default_bundle"]])
def test_cheap_examples_run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    res = CliRunner().invoke(cli, argv)
    assert res.exit_code == 0, res.output


def test_deploy_example_from_help_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deploy --help example, as written (without --wheels: no network in tests), in a scratch folder."""
    (line,) = [argv for where, argv in help_examples() if where == "fer-edge deploy"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fer_edge" / "assets").mkdir(parents=True)
    (tmp_path / "fer_edge" / "assets" / "default_bundle").symlink_to(REPO / "fer_edge" / "assets" / "default_bundle")
    res = CliRunner().invoke(cli, [a for a in line if a != "--wheels"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "dist" / "rpi5" / "deploy.json").read_text())["device"] == "rpi5"
