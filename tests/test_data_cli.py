"""`fer-edge data info|show|prepare` through click's test runner, good and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner, Result
from helpers.datasets import make_ckplus48, make_ferplus, make_rafdb

from fer_edge.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["data", *map(str, args)])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
    for f in fragments:
        assert f in lines[0], lines[0]


def test_info_table(tmp_path: Path) -> None:
    result = run("info", make_ferplus(tmp_path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "layout    ferplus" in out and "18 (9 with a usable label)" in out and "48x48 gray" in out
    header = next(line for line in out.splitlines() if line.startswith("class"))
    assert header.split() == ["class", "train", "val", "test", "all"]
    neutral = next(line for line in out.splitlines() if line.startswith("neutral"))
    assert neutral.split() == ["neutral", "1", "1", "1", "3"]
    assert next(line for line in out.splitlines() if line.startswith("unlabelled")).split()[-1] == "9"


def test_info_json_has_subjects_and_counts(tmp_path: Path) -> None:
    result = run("info", make_ckplus48(tmp_path), "--json", "--no-cache")
    s = json.loads(result.stdout)
    assert s["layout"] == "ckplus48" and s["subjects"] == 6 and s["faces"] == 63
    assert s["counts"]["all"]["total"] == 63 and s["image_size"] == [48, 48] and s["channels"] == 1


def test_info_lists_corrupt_images_and_strict_fails(tmp_path: Path) -> None:
    root = make_ckplus48(tmp_path)
    (root / "fear" / "S010_004_00000017.png").write_bytes(b"\x89PNG broken")
    result = run("info", root)
    assert result.exit_code == 0
    assert "1 unreadable image(s) skipped" in result.stdout and "S010_004_00000017.png" in result.stdout
    assert_one_line_error(run("info", root, "--strict"), "S010_004_00000017.png", "not a readable image")


def test_show_writes_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    result = run("show", make_ckplus48(tmp_path / "ck"), "--out", out, "--per-class", 3)
    assert result.exit_code == 0, result.output
    img = cv2.imread(str(out))
    assert img.shape[0] == 7 * (96 + 4) and img.shape[1] == 130 + 3 * 98 + 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_show_split_needs_an_official_split(tmp_path: Path) -> None:
    assert run("show", make_ferplus(tmp_path / "fp"), "--out", tmp_path / "g.jpg", "--split", "val").exit_code == 0
    assert (tmp_path / "g.jpg").is_file()
    result = run("show", make_ckplus48(tmp_path / "ck"), "--out", tmp_path / "g.png", "--split", "test")
    assert_one_line_error(result, "has no official split")


def test_prepare_then_already_cached(tmp_path: Path, isolated_cache: Path) -> None:
    root = make_ckplus48(tmp_path)
    first = run("prepare", root)
    assert first.exit_code == 0 and "ckplus48: 63 faces cached in" in first.stdout
    assert str(isolated_cache) in first.stdout
    assert "already cached" in run("prepare", root).stdout
    assert "faces cached in" in run("prepare", root, "--force").stdout


@pytest.mark.parametrize(
    ("setup", "fragments"),
    [
        (lambda p: p, ["unknown dataset layout; tried", "imagefolder"]),
        (lambda p: p / "absent", ["no such file or folder"]),
        (lambda p: _bad_label(make_rafdb(p)), ["list_patition_label.txt:8:", "label must be 1..7"]),
        (lambda p: make_rafdb(p, images=False), ["labels read (4 train / 3 test)", "Image/aligned/ is missing"]),
    ],
)
@pytest.mark.parametrize("command", ["info", "prepare"])
def test_bad_inputs_are_one_line(tmp_path: Path, setup, fragments: list[str], command: str) -> None:
    (tmp_path / "notes.txt").write_text("not a dataset")
    assert_one_line_error(run(command, setup(tmp_path)), *fragments)


def test_forced_format_that_does_not_fit(tmp_path: Path) -> None:
    assert_one_line_error(run("info", make_ckplus48(tmp_path), "--format", "rafdb"),
                          "does not look like the rafdb layout")


def _bad_label(root: Path) -> Path:
    with (root / "EmoLabel" / "list_patition_label.txt").open("a") as fh:
        fh.write("train_99999.jpg 0\n")
    return root


def test_progress_bar_shows_count_and_eta(tmp_path: Path) -> None:
    import io

    from fer_edge.data import load_dataset
    from fer_edge.data.cli import ProgressBar

    out = io.StringIO()
    bar = ProgressBar("reading", disable=False, file=out)
    load_dataset(make_ckplus48(tmp_path), cache=False, progress=bar)
    bar.close()
    assert "reading" in out.getvalue() and "63/63" in out.getvalue() and "<00:00" in out.getvalue()
