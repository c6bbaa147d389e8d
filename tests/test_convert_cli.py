"""`fer-edge convert` / `fer-edge bundle inspect` on bad input: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import one_line_error


@pytest.fixture
def out(tmp_path: Path) -> str:
    return str(tmp_path / "bundle")


def test_missing_source(tmp_path: Path, out: str) -> None:
    assert "no such model file or run folder" in one_line_error(["convert", str(tmp_path / "nope.keras"), "-o", out])


def test_file_that_is_not_a_model(tmp_path: Path, out: str) -> None:
    (tmp_path / "faces.csv").write_text("a,b\n")
    line = one_line_error(["convert", str(tmp_path / "faces.csv"), "-o", out])
    assert "not a Keras model file (.keras)" in line


@pytest.mark.parametrize("content", [b"hello, not a zip", b"PK\x03\x04" + b"\x00" * 200])
def test_corrupt_keras_file(tmp_path: Path, out: str, content: bytes) -> None:
    (tmp_path / "model.keras").write_bytes(content)
    line = one_line_error(["convert", str(tmp_path / "model.keras"), "-o", out])
    assert line.startswith("error:") and "not a readable Keras model" in line


def test_run_folder_without_a_model(tmp_path: Path, out: str) -> None:
    (tmp_path / "run").mkdir()
    assert "no model.keras in this folder" in one_line_error(["convert", str(tmp_path / "run"), "-o", out])


def test_unknown_format_and_precision(tmp_path: Path, out: str) -> None:
    line = one_line_error(["convert", str(tmp_path), "--formats", "tflite,onxx", "-o", out])
    assert "unknown format 'onxx'" in line and "Did you mean 'onnx'" in line
    assert "unknown precision 'int4'" in one_line_error(["convert", str(tmp_path), "--precisions", "int4", "-o", out])


def test_out_that_is_not_a_bundle_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "thesis.tex").write_text("precious")
    line = one_line_error(["convert", str(tmp_path), "-o", str(tmp_path / "keep")])
    assert "exists and is not a fer-edge bundle" in line
    assert (tmp_path / "keep" / "thesis.tex").read_text() == "precious"


def test_inspect_rejects_non_bundles(tmp_path: Path) -> None:
    assert "not a fer-edge bundle" in one_line_error(["bundle", "inspect", str(tmp_path)])
    (tmp_path / "manifest.json").write_text("{broken")
    assert "not valid JSON" in one_line_error(["bundle", "inspect", str(tmp_path)])
    (tmp_path / "manifest.json").write_text('{"schema_version": 1, "name": "x"}')
    assert "invalid manifest" in one_line_error(["bundle", "inspect", str(tmp_path)])
