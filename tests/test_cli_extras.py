"""A command whose extra is not installed says which extra in one line, never 'No such command' or a traceback.
The missing packages are simulated in a subprocess (``sys.modules[name] = None`` makes an import fail)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "results" / "train" / "compact-polish2"


def ferplus(root: Path, n: int = 16) -> None:
    """A FERPlus-layout folder of noise faces, 8 classes."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (root / folder).mkdir(parents=True)
        rows = []
        for i in range(n):
            cv2.imwrite(str(root / folder / f"fer{i:05d}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
            rows.append(f'fer{i:05d}.png,"(0, 0, 48, 48)",' + ",".join("10" if k == i % 8 else "0" for k in range(10)))
        (root / folder / "label.csv").write_text("\n".join(rows) + "\n")


def fer_edge_without(modules: tuple[str, ...], *args: str, debug: bool = False, path: Path | None = None,
                     patch: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
            + (f"sys.path.insert(0, {str(path)!r})\n" if path else "") + patch
            + "from fer_edge.cli import main\nmain(sys.argv[1:])\n")
    home = tempfile.mkdtemp(prefix="fer-edge-home-")
    full = {"PATH": "/usr/bin:/bin", "HOME": home, **({"FER_EDGE_DEBUG": "1"} if debug else {}), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=full, check=False)


@pytest.mark.parametrize(("args", "line"), [
    (["train", "--backbone", "compact", "--chain", "ferplus", "--out", "OUT"],
     "error: fer-edge train needs the training extra: pip install -e \".[train]\" (in the fer-edge checkout)"),
    (["explain", str(MODEL / "model.keras"), str(REPO / "fer_edge/assets/sample/sample.mp4")],
     "error: fer-edge explain needs the training extra: pip install -e \".[train]\" (in the fer-edge checkout)"),
    (["convert", str(MODEL), "--int8", "--out", "OUT"],
     "error: fer-edge convert needs the conversion extra: pip install -e \".[convert]\" (in the fer-edge checkout)"),
])
def test_missing_training_stack_is_one_line(args: list[str], line: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    ferplus(data / "ferplus")  # train reads its data before it needs Keras
    res = fer_edge_without(("tensorflow", "keras"), *(str(tmp_path / "out") if a == "OUT" else a for a in args),
                           env={"FER_EDGE_DATA": str(data)})
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
        "error: fer-edge explain needs the training extra: pip install -e \".[train]\" (in the fer-edge checkout)"]
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


SAMPLE = REPO / "fer_edge" / "assets" / "sample" / "sample.mp4"


@pytest.mark.parametrize(("modules", "args", "line"), [
    (("aiohttp",), ["serve", "--source", str(SAMPLE)],
     'error: fer-edge serve needs the serve extra (aiohttp): pip install -e ".[serve]" (in the fer-edge checkout)'),
    (("paho", "paho.mqtt"), ["serve", "--source", str(SAMPLE), "--mqtt", "mqtt://127.0.0.1/x"],
     'error: --mqtt needs paho-mqtt, part of the serve extra: pip install -e ".[serve]" (in the fer-edge checkout)'),
    (("yaml",), ["train", "--config", "CONFIG"],
     'error: YAML configs need PyYAML, part of the training extra: pip install -e ".[train]" (in the fer-edge '
     'checkout); or write the config as JSON'),
])
def test_every_missing_extra_says_the_same_install_line(modules: tuple[str, ...], args: list[str], line: str,
                                                         tmp_path: Path) -> None:
    """serve's and the YAML config's own checks give the same line and exit code as a missing command extra."""
    config = tmp_path / "c.yaml"
    config.write_text("backbone: compact\n")
    res = fer_edge_without(modules, *(str(config) if a == "CONFIG" else a for a in args))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [line]
