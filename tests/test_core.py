"""The shared core: registry, labels, atomic writes, the bundle manifest and the CLI's error handling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge import atomic, bundle
from fer_edge.errors import DataError, FerEdgeError, ModelError
from fer_edge.labels import EMOTIONS, canonical, display, index
from fer_edge.registry import Registry


def test_registry_suggests_nearest_name() -> None:
    reg: Registry[int] = Registry("backbone")
    reg.add("mobilenetv2", 1)
    reg.add("resnet50", 2)
    assert reg.get("MobileNetV2") == 1
    with pytest.raises(FerEdgeError, match=r"unknown backbone 'mobilenet2'.*mobilenetv2, resnet50.*'mobilenetv2'"):
        reg.get("mobilenet2")
    with pytest.raises(ValueError, match="twice"):
        reg.add("resnet50", 3)


def test_labels_aliases_map_to_canonical_order() -> None:
    assert EMOTIONS[0] == "neutral" and EMOTIONS[-1] == "contempt" and len(EMOTIONS) == 8
    assert canonical("Angry") == "anger" and canonical("HA") == "happiness" and canonical("sad") == "sadness"
    assert index("surprised") == 2 and display("happy") == "Happiness"
    with pytest.raises(DataError, match="unknown emotion label 'bored'"):
        canonical("bored")


def test_atomic_file_write_leaves_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, not mkstemp's 0600


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    with atomic.atomic_dir(target) as d:
        (d / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as d:
        (d / "b.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    with atomic.atomic_dir(target) as d:
        (d / "b.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def _manifest(tmp_path: Path) -> bundle.Manifest:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(64))
    art = bundle.Artifact("tflite", "int8", "model.bin", bundle.sha256_file(model), 64, "int8", "int8",
                          {"scale": 1 / 255, "zero_point": -128}, {"scale": 1 / 256, "zero_point": -128})
    return bundle.Manifest("m", "compact", EMOTIONS, bundle.InputSpec(48, 48), (art,), parameters=10)


def test_manifest_round_trips_and_validates(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    (tmp_path / bundle.MANIFEST).write_text(json.dumps(m.to_dict()))
    loaded = bundle.load_bundle(tmp_path)
    assert loaded.manifest == m
    assert loaded.find(precision="int8")[0].input_quant == {"scale": 1 / 255, "zero_point": -128}
    assert loaded.verify(m.artifacts[0]) == tmp_path / "model.bin"
    bad = m.to_dict()
    bad["input"]["channels"] = 2
    with pytest.raises(ModelError, match="invalid manifest at input/channels"):
        bundle.Manifest.from_dict(bad)


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    (tmp_path / bundle.MANIFEST).write_text(json.dumps(m.to_dict()))
    data = bytearray((tmp_path / "model.bin").read_bytes())
    data[10] ^= 0xFF
    (tmp_path / "model.bin").write_bytes(bytes(data))
    b = bundle.load_bundle(tmp_path)
    with pytest.raises(ModelError, match="sha256 does not match"):
        b.verify(b.manifest.artifacts[0])


def test_load_bundle_on_a_non_bundle_says_so(tmp_path: Path) -> None:
    f = tmp_path / "model.tflite"
    f.write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a fer-edge bundle"):
        bundle.load_bundle(f)
    (tmp_path / bundle.MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        bundle.load_bundle(tmp_path)


def test_input_spec_prepare_matches_manual_preprocessing() -> None:
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)
    spec = bundle.InputSpec(48, 48, channels=1, color="gray", scale=1 / 255, mean=(0.5,), std=(0.25,))
    import cv2

    gray = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    expect = (gray.astype(np.float32) / 255 - 0.5) / 0.25
    got = spec.prepare([bgr], bgr=True)
    assert got.shape == (1, 48, 48, 1)
    np.testing.assert_allclose(got[0, ..., 0], expect, atol=1e-6)
    rgb = bundle.InputSpec(4, 4, channels=3, color="rgb", mean=(0, 0, 0), std=(1, 1, 1))
    px = np.zeros((4, 4, 3), np.uint8)
    px[..., 0] = 255  # blue in BGR
    assert rgb.prepare([px], bgr=True)[0, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_int8_quantization_round_trip() -> None:
    from fer_edge.runtime.classifier import dequantize, quantize

    x = np.linspace(0, 1, 50, dtype=np.float32)
    q = quantize(x, np.dtype(np.int8), {"scale": 1 / 255, "zero_point": -128})
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    np.testing.assert_allclose(dequantize(q, {"scale": 1 / 255, "zero_point": -128}), x, atol=0.5 / 255 + 1e-7)


def test_cli_version_and_one_line_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "fer_edge.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "fer-edge, version" in out.stdout
    out = subprocess.run([sys.executable, "-m", "fer_edge.cli", "nosuchcommand"], capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr and "No such command" in out.stderr


def test_cli_turns_errors_into_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import click

    from fer_edge import cli

    @click.command()
    def boom() -> None:
        raise ModelError("x.tflite: not a valid TFLite model")

    monkeypatch.setitem(cli.COMMANDS, "boom", "tests.test_core:_boom")
    monkeypatch.setattr(cli.LazyGroup, "get_command", lambda self, ctx, name: boom)
    with pytest.raises(SystemExit) as exc:
        cli.main(["boom"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: x.tflite: not a valid TFLite model\n"


def test_cli_help_lists_commands() -> None:
    from fer_edge.cli import cli

    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0 and "fer-edge demo" in res.output


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux /proc needed to read the umask")
def test_atomic_writes_follow_the_umask_without_setting_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting the umask to read it would, for a moment, give other threads' new files mode 0666."""
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *_: pytest.fail("the umask was set"))
        out = atomic.write_bytes(tmp_path / "f.bin", b"x")
        assert out.stat().st_mode & 0o777 == 0o640
        with atomic.atomic_dir(tmp_path / "d") as d:
            (d / "a").write_text("a")
        assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    finally:
        monkeypatch.undo()
        os.umask(old)


@pytest.mark.parametrize(("argv", "says"), [
    (["runn"], "No such command 'runn'"),
    (["run", "--size", "0x0"], "'--size'"),
    (["run", "--threads", "abc"], "'--threads'"),
    (["convert"], "Missing argument"),
    (["bench", "--nope"], "No such option"),
])
def test_a_bad_option_is_one_line_naming_the_help(argv: list[str], says: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from fer_edge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and says in err[0] and err[0].endswith("--help)"), err
