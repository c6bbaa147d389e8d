"""The fer-edge wheel a deployment carries: a too-old setuptools is named up front, a failed pip build shows pip's
real error (not its closing 'hint:' line), and an installed wheel names the command that makes the wheel."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.cli import cli
from fer_edge.devices import wheels
from fer_edge.errors import FerEdgeError

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "fer_edge" / "assets" / "default_bundle"


def deploy(out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["deploy", "--device", "x86", "--bundle", str(DEFAULT), "--out", str(out), *extra])
    if isinstance(res.exception, FerEdgeError):
        return res.exception.exit_code, str(res.exception)
    return res.exit_code, res.output


@pytest.mark.parametrize(("version", "says"), [("65.5.0", "installed: 65.5.0"), (None, "not installed")])
def test_old_setuptools_is_named_before_building(version: str | None, says: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_version(name: str) -> str:
        if version is None:
            raise wheels.importlib.metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(wheels.importlib.metadata, "version", fake_version)
    calls: list[list[str]] = []
    monkeypatch.setattr(wheels, "_pip", lambda args, what: calls.append(args))
    code, text = deploy(tmp_path / "out")
    assert code != 0 and not calls and not (tmp_path / "out").exists()
    assert text.strip().splitlines() == [
        f"error: building the fer-edge wheel from this checkout needs setuptools>=77 ({says}): "
        f"pip install 'setuptools>=77', or pass --find-links DIR with {wheels.WHEEL_NAME}"]


def test_a_failed_build_shows_pips_error_not_its_hint(tmp_path: Path) -> None:
    """A real pip build of a project whose pyproject.toml setuptools rejects (what setuptools<77 does to ours)."""
    src = tmp_path / "bad"
    src.mkdir()
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n'
                                        'build-backend = "setuptools.build_meta"\n'
                                        '[project]\nname = "bad"\nversion = "1"\nlicense = 5\n')
    with pytest.raises(FerEdgeError) as err:
        wheels._pip(["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "w"),
                     str(src)], "building the fer-edge wheel")
    msg = str(err.value)
    assert msg.startswith("building the fer-edge wheel failed: ") and "\n" not in msg
    assert "project.license" in msg and "hint:" not in msg and "See above" not in msg


def test_pip_error_picks_the_line_that_says_why() -> None:
    old_pip = ("  error: subprocess-exited-with-error\n  ╰─> [3 lines of output]\n"
               "      ValueError: invalid pyproject.toml config: `project.license`.\n      [end of output]\n"
               "error: metadata-generation-failed\n\nnote: This is an issue with the package.\n"
               "hint: See above for details.\n")
    assert wheels.pip_error(old_pip) == ("metadata-generation-failed "
                                         "(ValueError: invalid pyproject.toml config: `project.license`.)")
    download = "ERROR: Could not find a version that satisfies the requirement x==1\nERROR: No matching distribution\n"
    assert wheels.pip_error(download) == "Could not find a version that satisfies the requirement x==1"
    assert wheels.pip_error("") == "pip gave no output"


def test_an_installed_wheel_names_the_command_that_makes_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheels, "source_tree", lambda: None)
    code, text = deploy(tmp_path / "out")
    assert code != 0 and not (tmp_path / "out").exists()
    command = re.search(r"`(pip wheel [^`]+)`", text)
    assert command and wheels.WHEEL_NAME in text and "--find-links DIR" in text
    # the command as given, with this checkout and a folder filled in (no build isolation here: no network)
    argv = shlex.split(command.group(1).replace("/path/to/checkout", str(REPO)).replace("DIR", str(tmp_path / "w")))
    subprocess.run([sys.executable, "-m", *argv, "--no-build-isolation", "--no-index", "-q"], check=True,
                   capture_output=True, timeout=300)
    assert (tmp_path / "w" / wheels.WHEEL_NAME).is_file()
    code, text = deploy(tmp_path / "out", "--find-links", str(tmp_path / "w"))
    assert code == 0, text
    assert (tmp_path / "out" / "wheels" / wheels.WHEEL_NAME).is_file()
