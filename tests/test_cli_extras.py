"""A command whose extra is not installed says which extra in one line, never 'No such command' or a traceback.
The missing packages are simulated in a subprocess (``sys.modules[name] = None`` makes an import fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "results" / "train" / "compact-polish2"


def fer_edge_without(modules: tuple[str, ...], *args: str, debug: bool = False, path: Path | None = None,
                     patch: str = "") -> subprocess.CompletedProcess[str]:
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
            + (f"sys.path.insert(0, {str(path)!r})\n" if path else "") + patch
            + "from fer_edge.cli import main\nmain(sys.argv[1:])\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **({"FER_EDGE_DEBUG": "1"} if debug else {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env, check=False)


@pytest.mark.parametrize(("args", "line"), [
    (["train", "--backbone", "compact", "--chain", "ferplus", "--out", "OUT"],
     "error: fer-edge train needs the training extra: pip install 'fer-edge[train]'"),
    (["explain", str(MODEL / "model.keras"), str(REPO / "fer_edge/assets/sample/sample.mp4")],
     "error: fer-edge explain needs the training extra: pip install 'fer-edge[train]'"),
    (["convert", str(MODEL), "--int8", "--out", "OUT"],
     "error: fer-edge convert needs the conversion extra: pip install 'fer-edge[convert]'"),
])
def test_missing_training_stack_is_one_line(args: list[str], line: str, tmp_path: Path) -> None:
    res = fer_edge_without(("tensorflow", "keras"), *(str(tmp_path / "out") if a == "OUT" else a for a in args))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [line]


def test_command_module_that_cannot_import(tmp_path: Path) -> None:
    """The command's own module fails to import: listed in --help with the reason, one line when run."""
    (tmp_path / "needs_keras_cli.py").write_text("import keras\nimport click\n\n@click.command()\ndef cmd():\n"
                                                 "    pass\n")
    patch = "import fer_edge.cli as c\nc.COMMANDS['explain'] = 'needs_keras_cli:cmd'\n"
    res = fer_edge_without(("keras",), "explain", "a.keras", "--any", "option", path=tmp_path, patch=patch)
    assert res.returncode == 1 and "No such command" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: fer-edge explain needs the training extra: pip install 'fer-edge[train]'"]
    res = fer_edge_without(("keras",), "--help", path=tmp_path, patch=patch)
    assert res.returncode == 0 and "needs the training extra" in res.stdout


def test_other_import_errors_name_the_module() -> None:
    res = fer_edge_without(("jsonschema",), "bundle", "inspect", str(REPO / "fer_edge/assets/default_bundle"))
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: fer-edge bundle: cannot import jsonschema") and "FER_EDGE_DEBUG" in line
    res = fer_edge_without(("jsonschema",), "bundle", "inspect", str(REPO / "fer_edge/assets/default_bundle"),
                           debug=True)
    assert "Traceback" in res.stderr and "jsonschema" in res.stderr
