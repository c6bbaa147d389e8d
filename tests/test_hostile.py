"""Hostile inputs, tried as an attacker and as an unlucky user would, through the real CLI.

Each case builds its hostile input in a fresh folder (bundles whose manifest names files outside it, symlinks
pointing out, images declaring 30000x30000 pixels, broken manifests, label files that are not UTF-8, credentials
in a source URL, --resume with nothing to resume) and checks: one ``error:`` line on stderr, a non-zero exit, no
traceback, and nothing outside the expected output folder changed (the folder tree is snapshot before and after).
Then Hypothesis feeds arbitrary JSON and text to the manifest loader and the label readers: nothing but a
FerEdgeError ever comes out. The output-side cases (full disks, killed writers) are in test_hostile_outputs.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_edge.bundle import MANIFEST, SCHEMA_VERSION, Manifest, default_bundle_path, load_bundle
from fer_edge.cli import cli
from fer_edge.errors import DataError, FerEdgeError, ModelError
from fer_edge.redact import portable, redact

REPO = Path(__file__).resolve().parents[1]
DEFAULT = default_bundle_path()
SECRETS = ("secretpw", "secrettoken")
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Library telemetry and caches go to a throw-away HOME, never the real one (and not into the snapshot)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FER_EDGE_CACHE", str(home / "cache"))
    monkeypatch.delenv("FER_EDGE_MAX_PIXELS", raising=False)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: kind, size, content hash (files) or target (links)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def changed(before: dict[str, tuple], after: dict[str, tuple], allowed: tuple[str, ...] = ()) -> list[str]:
    """Entries added, removed or modified, except those under an ``allowed`` folder (relative paths)."""
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(k for k in keys if not any(k == a or k.startswith(a + os.sep) for a in allowed))


def fer_edge(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``fer-edge ARGS`` in this process through the click group (exit code, stdout, stderr); an exception other
    than the CLI's own exit fails the test (a traceback is never an answer)."""
    res = CliRunner().invoke(cli, list(args), env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"fer-edge {' '.join(args)} raised {type(res.exception).__name__}: {res.exception}")
    return res.exit_code, res.stdout, res.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, f"exit 0; stderr: {err[-600:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line: {err[-800:]!r}"
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def face_png(path: Path, side: int = 96) -> Path:
    img = np.full((side, side), 128, np.uint8)
    cv2.circle(img, (side // 2, side // 2), side // 3, 200, -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A valid-looking PNG of a few hundred bytes whose header declares ``width`` x ``height`` gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + _png_chunk(b"IEND", b""))
    return path


def huge_jpeg(path: Path, side: int = 12000) -> Path:
    """A small real JPEG whose SOF0 header is patched to declare ``side`` x ``side`` pixels."""
    _ok, buf = cv2.imencode(".jpg", np.full((16, 16), 100, np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def huge_bmp(path: Path, side: int = 12000) -> Path:
    """A small real BMP whose header declares ``side`` x ``side`` pixels (the pixel data is 16x16)."""
    _ok, buf = cv2.imencode(".bmp", np.full((16, 16, 3), 100, np.uint8))
    data = bytearray(buf.tobytes())
    data[18:26] = struct.pack("<ii", side, side)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def copy_bundle(dest: Path, keep: tuple[str, ...] = ("tflite",)) -> tuple[Path, dict]:
    """A copy of the shipped bundle holding only the artifacts of the ``keep`` formats; (folder, manifest)."""
    dest.mkdir(parents=True)
    d = json.loads((DEFAULT / MANIFEST).read_text())
    d["artifacts"] = [a for a in d["artifacts"] if a["format"] in keep]
    for a in d["artifacts"]:
        for name in (a["file"], *(c["file"] for c in a.get("companions", []))):
            shutil.copyfile(DEFAULT / name, dest / name)
    return dest, d


def write_manifest(bundle: Path, d: dict | str | bytes) -> None:
    data = d if isinstance(d, bytes) else (d if isinstance(d, str) else json.dumps(d, indent=2)).encode()
    (bundle / MANIFEST).write_bytes(data)


# ------------------------------------------------------------------------------- bundles reaching outside


def _outside(root: Path, name: str, source: str) -> Path:
    """A copy of the bundle file ``source`` outside the bundle (so its sha256 matches the manifest)."""
    target = root / name
    shutil.copyfile(DEFAULT / source, target)
    return target


def _art(d: dict, fmt: str) -> dict:
    return next(a for a in d["artifacts"] if a["format"] == fmt)


def t_dotdot(root: Path, b: Path, d: dict) -> None:
    _outside(root, "victim.tflite", "model_int8.tflite")
    _art(d, "tflite")["file"] = "../../victim.tflite"


def t_absolute(root: Path, b: Path, d: dict) -> None:
    _art(d, "tflite")["file"] = str(_outside(root, "victim.tflite", "model_int8.tflite"))


def t_symlink_out(root: Path, b: Path, d: dict) -> None:
    target = _outside(root, "victim.tflite", "model_int8.tflite")
    (b / "model_int8.tflite").unlink()
    (b / "model_int8.tflite").symlink_to(target)


def t_symlink_dir(root: Path, b: Path, d: dict) -> None:
    _outside(root, "victim.tflite", "model_int8.tflite")
    (b / "up").symlink_to(root)
    _art(d, "tflite")["file"] = "up/victim.tflite"


def t_subfolder(root: Path, b: Path, d: dict) -> None:
    (b / "sub").mkdir()
    shutil.move(b / "model_int8.tflite", b / "sub" / "model_int8.tflite")
    _art(d, "tflite")["file"] = "sub/model_int8.tflite"


def t_backslash(root: Path, b: Path, d: dict) -> None:
    _outside(root, "victim.tflite", "model_int8.tflite")
    _art(d, "tflite")["file"] = "..\\..\\victim.tflite"


def t_manifest_name(root: Path, b: Path, d: dict) -> None:
    _art(d, "tflite")["file"] = MANIFEST


def t_nul(root: Path, b: Path, d: dict) -> None:
    _art(d, "tflite")["file"] = "model_int8.tflite\x00.txt"


def t_dot(root: Path, b: Path, d: dict) -> None:
    _art(d, "tflite")["file"] = ".."


def t_companion_dotdot(root: Path, b: Path, d: dict) -> None:
    _outside(root, "victim.bin", "model_int8.bin")
    _art(d, "openvino")["companions"][0]["file"] = "../../victim.bin"


def t_companion_symlink(root: Path, b: Path, d: dict) -> None:
    target = _outside(root, "victim.bin", "model_int8.bin")
    (b / "model_int8.bin").unlink()
    (b / "model_int8.bin").symlink_to(target)


TRAVERSALS: dict[str, tuple[Callable[[Path, Path, dict], None], str]] = {
    "dotdot": (t_dotdot, "plain file name"),
    "absolute": (t_absolute, "plain file name"),
    "symlink-out": (t_symlink_out, "is a symlink"),
    "symlink-dir": (t_symlink_dir, "plain file name"),
    "subfolder": (t_subfolder, "plain file name"),
    "backslash": (t_backslash, "plain file name"),
    "manifest-name": (t_manifest_name, "plain file name"),
    "nul-byte": (t_nul, "plain file name"),
    "dotdot-name": (t_dot, "plain file name"),
    "companion-dotdot": (t_companion_dotdot, "plain file name"),
    "companion-symlink": (t_companion_symlink, "is a symlink"),
}


def _commands(b: Path, root: Path, fmt: str) -> dict[str, list[str]]:
    backend = {"tflite": "litert", "openvino": "openvino"}[fmt]
    return {
        "inspect": ["bundle", "inspect", str(b), "--verify"],
        "run": ["run", "--model", str(b), "--backend", backend, "--source", str(face_png(root / "face.png")),
                "--json", str(root / "out" / "run.jsonl")],
        "bench": ["bench", str(b), "--backends", backend, "--threads", "1", "--warmup", "1", "--runs", "2",
                  "--rounds", "1", "--min-time", "0", "--batch-sizes", "1", "--out", str(root / "out"), "--quiet"],
        "deploy": ["deploy", "--device", "rpi5", "--bundle", str(b), "--out", str(root / "out" / "deploy")],
    }


# deploy ships the profile's format (rpi5: tflite), so the OpenVINO companion cases go through the other three
@pytest.mark.parametrize(("case", "command"), [(c, cmd) for c in TRAVERSALS for cmd in ("inspect", "run", "bench",
                                               "deploy") if not (cmd == "deploy" and c.startswith("companion"))])
def test_bundle_files_never_reach_outside(case: str, command: str, tmp_path: Path) -> None:
    fmt = "openvino" if case.startswith("companion") else "tflite"
    root = tmp_path
    b, d = copy_bundle(root / "work" / "bundle", keep=(fmt,))
    make, why = TRAVERSALS[case]
    make(root, b, d)
    write_manifest(b, d)
    args = _commands(b, root, fmt)[command]
    before = snapshot(root)
    code, _out, err = fer_edge(*args)
    if command == "bench":  # the results are written (the row says why it failed), and the exit is non-zero
        line = assert_one_line_error(code, err, "failed")
        assert why in line or why in (root / "out" / "results.json").read_text()
    else:
        assert_one_line_error(code, err, why)
    assert changed(before, snapshot(root), allowed=("out",)) == []
    if command == "deploy":
        assert not (root / "out" / "deploy").exists()


def test_a_refused_bundle_is_refused_by_the_library_too(tmp_path: Path) -> None:
    """Bundle.verify / artifact_path / copy_subset check names themselves (a Bundle built by hand)."""
    from dataclasses import replace

    from fer_edge.bundle import Bundle, copy_subset

    b, d = copy_bundle(tmp_path / "b")
    write_manifest(b, d)
    good = load_bundle(b)
    with pytest.raises(ModelError, match="plain file name"):
        Bundle(b, good.manifest.with_artifacts((replace(good.manifest.artifacts[0], file="../x"),)))
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "model_int8.tflite").symlink_to(tmp_path / "planted")
    copy_subset(good, good.manifest.artifacts, tmp_path / "dest")  # a symlink in dest is replaced, not followed
    assert not (tmp_path / "planted").exists() and not (tmp_path / "dest" / "model_int8.tflite").is_symlink()


# ------------------------------------------------------------------------------------------ broken manifests


def _set(path: str, value: object) -> Callable[[dict], None]:
    def f(d: dict) -> None:
        keys = path.split("/")
        obj = d
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj[int(keys[-1]) if isinstance(obj, list) else keys[-1]] = value
    return f


BROKEN: dict[str, tuple[Callable[[dict], None] | bytes, str]] = {
    "std-zero": (_set("input/std", [0]), "input/std"),
    "std-negative": (_set("input/std", [-1.0]), "input/std"),
    "std-nan": (_set("input/std", [float("nan")]), "NaN or infinity"),
    "scale-infinite": (_set("input/scale", float("inf")), "NaN or infinity"),
    "mean-five-values": (_set("input/mean", [0, 0, 0, 0, 0]), "input/mean"),
    "input-100000px": (_set("input/height", 100000), "input/height"),
    "rgb-with-1-channel": (_set("input/color", "rgb"), "channel"),
    "newer-schema": (_set("schema_version", SCHEMA_VERSION + 1), "newer than this fer-edge"),
    "crop-margin-negative": (lambda d: d.update(schema_version=2, crop={"margin": -0.5, "square": True}),
                             "crop/margin"),
    "crop-margin-nan": (lambda d: d.update(schema_version=2, crop={"margin": float("nan"), "square": True}),
                        "NaN or infinity"),
    "crop-missing-in-v2": (lambda d: d.update(schema_version=2) or d.pop("crop", None), "crop"),
    "sha-not-hex": (_set("artifacts/0/sha256", "zz"), "artifacts/0/sha256"),
    "height-a-float": (_set("input/height", 48.0), "input/height"),  # JSON Schema's integer takes 48.0
    "channels-a-float": (_set("input/channels", 1.0), "input/channels"),
    "bytes-a-float": (_set("artifacts/0/bytes", 1000.0), "artifacts/0/bytes"),
    "dtype-complex": (_set("artifacts/0/input_dtype", "complex128"), "artifacts/0/input_dtype"),
    "dtype-unknown": (_set("artifacts/0/output_dtype", "bogus"), "artifacts/0/output_dtype"),
    "name-terminal-escape": (_set("name", "ok\x1b]0;TITLE\x07\nall checks passed"), "name"),
    "class-with-newline": (_set("classes/0", "neutral\nfake line"), "classes/0"),
    "classes-not-strings": (_set("classes", [1, 2, 3]), "classes"),
    "not-json": (b'{"schema_version": 1,', "not valid JSON"),
    "nested-100000-deep": (b"[" * 100000 + b"]" * 100000, "manifest"),
    "not-utf8": (b'{"name": "\xff\xfe"}', "not valid JSON"),
    "a-list": (b"[]", "invalid manifest"),
    "empty-file": (b"", "not valid JSON"),
    "17-MB": (b" " * (17 << 20) + b"{}", "at most"),
}


@pytest.mark.parametrize("command", ["inspect", "run"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_manifests_are_one_line(case: str, command: str, tmp_path: Path) -> None:
    b, d = copy_bundle(tmp_path / "bundle")
    mutate, why = BROKEN[case]
    if isinstance(mutate, bytes):
        write_manifest(b, mutate)
    else:
        mutate(d)
        write_manifest(b, json.dumps(d))  # NaN / Infinity written as JSON's non-standard literals
    args = _commands(b, tmp_path, "tflite")[command]
    before = snapshot(tmp_path)
    code, _out, err = fer_edge(*args)
    assert_one_line_error(code, err, why)
    assert changed(before, snapshot(tmp_path)) == []


@pytest.mark.parametrize("command", ["run", "bench"])
def test_classes_not_matching_the_model_outputs(command: str, tmp_path: Path) -> None:
    b, d = copy_bundle(tmp_path / "bundle")
    d["classes"] = [*d["classes"], "smug"]  # 9 names, the model gives 8 scores
    write_manifest(b, d)
    code, _out, err = fer_edge(*_commands(b, tmp_path, "tflite")[command])
    line = assert_one_line_error(code, err)
    text = line if command == "run" else (tmp_path / "out" / "results.json").read_text()
    assert "9 classes" in text and "8 outputs" in text


@pytest.mark.parametrize("where", ["input", "artifact", "companion", "top"])
def test_unknown_keys_are_ignored_with_a_warning(where: str, tmp_path: Path) -> None:
    """The one rule: a key this fer-edge does not know is ignored with a warning naming it (a newer manifest
    still loads); the bundle runs as before. Checked in a real process, where the warning reaches stderr."""
    b, d = copy_bundle(tmp_path / "bundle", keep=("openvino",) if where == "companion" else ("tflite",))
    target = {"input": lambda: d["input"], "artifact": lambda: d["artifacts"][0], "top": lambda: d,
              "companion": lambda: d["artifacts"][0]["companions"][0]}[where]()
    target["from_the_future"] = {"x": 1}
    write_manifest(b, d)
    res = subprocess.run([sys.executable, "-m", "fer_edge.cli", "bundle", "inspect", str(b), "--verify"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    assert "ignoring unknown manifest key(s)" in res.stderr and "from_the_future" in res.stderr
    assert "[ok]" in res.stdout and "Traceback" not in res.stderr


def test_non_finite_probabilities_never_reach_an_output(tmp_path: Path) -> None:
    """A model giving NaN (here: a classifier whose backend returns NaN) raises instead of writing NaN."""
    from fer_edge.runtime.classifier import Classifier

    clf = Classifier(DEFAULT, backend="litert")
    assert np.isfinite(clf.predict([np.zeros((48, 48), np.uint8)])).all()
    clf._run = lambda x: np.full((len(x), len(clf.classes)), np.nan, np.float32)  # what a broken model gives
    with pytest.raises(ModelError, match="non-finite"):
        clf.predict([np.zeros((48, 48), np.uint8)])


# --------------------------------------------------------------------------------------------- big images


IMAGES: dict[str, tuple[Callable[[Path], Path], dict[str, str], str]] = {
    "png-30000x30000": (huge_png, {}, "declares 30000x30000 pixels"),
    "jpeg-12000x12000": (lambda p: huge_jpeg(p.with_suffix(".jpg")), {}, "declares 12000x12000 pixels"),
    "bmp-12000x12000": (lambda p: huge_bmp(p.with_suffix(".bmp")), {}, "declares 12000x12000 pixels"),
    "limit-from-env": (lambda p: face_png(p, 96), {"FER_EDGE_MAX_PIXELS": "4000"}, "over the limit of 4,000"),
    "bad-limit-env": (lambda p: face_png(p, 96), {"FER_EDGE_MAX_PIXELS": "lots"}, "FER_EDGE_MAX_PIXELS"),
    "no-size-in-header": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40) and p, {}, "no image size"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_oversized_images_fail_before_decoding(case: str, tmp_path: Path) -> None:
    make, env, why = IMAGES[case]
    (tmp_path / "faces" / "happiness").mkdir(parents=True)
    make(tmp_path / "faces" / "happiness" / "a.png")
    before = snapshot(tmp_path)
    code, _out, err = fer_edge("data", "info", str(tmp_path / "faces"), "--no-cache", env=env)
    assert_one_line_error(code, err, why)
    assert changed(before, snapshot(tmp_path)) == []


def test_oversized_image_source_is_refused_by_run(tmp_path: Path) -> None:
    src = huge_png(tmp_path / "big.png")
    before = snapshot(tmp_path)
    code, _out, err = fer_edge("run", "--source", str(src), "--json", str(tmp_path / "out" / "r.jsonl"))
    assert_one_line_error(code, err, "big.png", "declares 30000x30000 pixels")
    assert changed(before, snapshot(tmp_path), allowed=("out",)) == []


def test_oversized_images_in_a_dataset_are_skipped_and_named(tmp_path: Path) -> None:
    from fer_edge.data import load_dataset

    for i in range(3):
        face_png(tmp_path / "d" / "happiness" / f"ok{i}.png", 48)
    huge_png(tmp_path / "d" / "happiness" / "zz.png")
    ds = load_dataset(tmp_path / "d", format="imagefolder", cache=False)
    assert len(ds) == 3 and any("declares 30000x30000" in p for p in ds.problems)
    with pytest.raises(DataError, match="30000x30000"):
        load_dataset(tmp_path / "d", format="imagefolder", cache=False, strict=True)


# ----------------------------------------------------------------------------------- label files, encodings


def _ferplus(root: Path, label: bytes) -> Path:
    face_png(root / "FER2013Train" / "fer0000000.png", 48)
    (root / "FER2013Train" / "label.csv").write_bytes(label)
    return root


def _rafdb(root: Path, label: bytes) -> Path:
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_bytes(label)
    return root


def _ckplus(root: Path, label: bytes) -> Path:
    face_png(root / "cohn-kanade-images" / "S005" / "001" / "S005_001_00000001.png", 64)
    (root / "Emotion" / "S005" / "001").mkdir(parents=True)
    (root / "Emotion" / "S005" / "001" / "S005_001_00000001_emotion.txt").write_bytes(label)
    return root


def _fer2013(root: Path, label: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "fer2013.csv").write_bytes(label)
    return root


PIXELS = " ".join(["7"] * 2304).encode()
FERPLUS_ROW = b'fer0000000.png,"(0, 0, 48, 48)",10,0,0,0,0,0,0,0,0,0\n'
LABELS: dict[str, tuple[Callable[[Path, bytes], Path], bytes, str]] = {
    "ferplus-label.csv-latin1": (_ferplus, FERPLUS_ROW + b"na\xefve.png,x\n", "label.csv:2: not UTF-8"),
    "ferplus-label.csv-huge-field": (_ferplus, b'fer0000000.png,"' + b"x" * 200_000 + b'"\n', "label.csv"),
    "ferplus-label.csv-nul": (_ferplus, b"fer0000000.png,\x00,1,2\n", "label.csv"),
    "rafdb-labels-utf16": (_rafdb, "train_00001.jpg 5\n".encode("utf-16"), "list_patition_label.txt:1: not UTF-8"),
    "ckplus-emotion-binary": (_ckplus, b"\x80\x81\x82 3.0\n", "_emotion.txt:1: not UTF-8"),
    "fer2013.csv-cp1252": (_fer2013, b"emotion,pixels,Usage\n0," + PIXELS + b",Training\n3,\x93" + PIXELS
                           + b",Training\n", "fer2013.csv:3: not UTF-8"),
}


@pytest.mark.parametrize("case", list(LABELS))
def test_label_files_that_are_not_text_are_one_line_naming_the_file(case: str, tmp_path: Path) -> None:
    make, data, why = LABELS[case]
    root = make(tmp_path / "data", data)
    before = snapshot(tmp_path)
    code, _out, err = fer_edge("data", "info", str(root), "--no-cache")
    assert_one_line_error(code, err, why)
    assert changed(before, snapshot(tmp_path)) == []


def test_label_file_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    from fer_edge.data.ferplus import read_label_csv

    p = tmp_path / "label.csv"
    p.write_bytes("\ufeff".encode() + FERPLUS_ROW)
    names, votes = read_label_csv(p)
    assert names == ["fer0000000.png"] and votes[0, 0] == 10


# ------------------------------------------------------------------------------------- credentials, machine


URLS = ("rtsp://user:secretpw@127.0.0.1:9/live", "http://admin:secretpw@127.0.0.1:9/v.mjpg?token=secrettoken",
        "rtsp://admin:secret@pw@127.0.0.1:9/s?password=secrettoken")


@pytest.mark.parametrize("url", URLS)
def test_bench_never_records_credentials(url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, err = fer_edge("bench", str(DEFAULT), "--backends", "litert", "--threads", "1", "--warmup", "1",
                                 "--runs", "2", "--rounds", "1", "--min-time", "0", "--batch-sizes", "1",
                                 "--pipeline", url, "--pipeline-frames", "3", "--out", str(out))
    assert_one_line_error(code, err, "pipeline")  # the stream is unreachable: a failed measurement, exit non-zero
    shown = stdout + err + "".join(p.read_text() for p in out.iterdir())
    assert "127.0.0.1" in shown and "***@" in shown
    for secret in (*SECRETS, "secret@"):
        assert secret not in shown
    assert {p.name for p in out.iterdir()} >= {"results.json", "report.md", "results.csv", "report.html"}


def test_report_hides_credentials_of_older_results(tmp_path: Path) -> None:
    from fer_edge.benchmarks.results import document
    from fer_edge.benchmarks.sysinfo import describe

    run = {"id": "r1", "created": "now", "device": {**describe("pi"), "load_average_end": None},
           "settings": {"pipeline": URLS[0]}, "data": {}, "rows": [],
           "pipeline": [{"status": "failed", "reason": f"cannot open {URLS[1]}", "source": URLS[0],
                         "model": "m", "bundle": "b"}]}
    (tmp_path / "results.json").write_text(json.dumps(document([run])))
    for suffix in ("md", "json", "html"):
        code, out, err = fer_edge("report", str(tmp_path / "results.json"), "--out", str(tmp_path / f"c.{suffix}"))
        assert code == 0, err
        text = (tmp_path / f"c.{suffix}").read_text() + out
        assert not any(s in text for s in SECRETS)


@pytest.mark.parametrize("text,want", [
    ("rtsp://user:pass@cam/stream", "rtsp://***@cam/stream"),
    ("RTSP://u:p@cam:554/s", "RTSP://***@cam:554/s"),
    ("http://a:p@ss@host/x", "http://***@host/x"),
    ("https://host/v?token=abc&fps=5", "https://host/v?token=***&fps=5"),
    ("error: stream rtsp://u:p@h/s dropped", "error: stream rtsp://***@h/s dropped"),
    ("rtsp://cam/stream", "rtsp://cam/stream"),
    ("clip.mp4", "clip.mp4"),
])
def test_one_redaction_rule(text: str, want: str) -> None:
    from fer_edge.runtime.sources.stream import StreamSource

    assert redact(text) == want
    if "://" in text and " " not in text:  # the runtime's stream description uses the same function
        assert StreamSource.describe(type("S", (), {"spec": text})()) == f"stream {want}"


def test_bench_device_name_is_the_board_or_cpu_not_the_host() -> None:
    import platform

    from fer_edge.benchmarks import sysinfo

    d = sysinfo.describe()
    assert d["name"] == (sysinfo.board_model() or sysinfo.cpu_model()) and d["name"] != platform.node()
    assert "executable" not in d and sys.executable not in json.dumps(d)
    assert sysinfo.describe("lab-pi")["name"] == "lab-pi" and "executable" in sysinfo.describe(executable=True)


def test_shipped_manifest_holds_no_path_of_the_machine_that_built_it() -> None:
    text = (DEFAULT / MANIFEST).read_text()
    for marker in ('"/', "/work/", "/home/", "/tmp/", ":\\\\"):
        assert marker not in text, marker
    code, out, err = fer_edge("bundle", "inspect", str(DEFAULT), "--verify")
    assert code == 0 and out.count("[ok]") == 3, err


def test_provenance_is_portable(tmp_path: Path) -> None:
    """What `fer-edge convert` records of a run: no absolute path of this machine, the model by name and sha256."""
    from fer_edge.convert.source import ModelSource

    prov = {"source": "/work/main/results/run/model.keras", "run": {"dataset": {"root": "/data/ferplus"},
                                                                    "config": {"out": "runs/x"}}}
    assert portable(prov) == {"source": "model.keras", "run": {"dataset": {"root": "ferplus"},
                                                               "config": {"out": "runs/x"}}}
    run = tmp_path / "runs" / "compact"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"weights")
    meta = {"backbone": "compact", "config": {"weights": str(tmp_path / "start.keras"), "out": "runs/compact"},
            "dataset": {"name": "ferplus", "root": str(tmp_path / "data" / "ferplus")}}
    got = ModelSource(run / "model.keras", run, meta).provenance()
    assert str(tmp_path) not in json.dumps(got)
    assert got["source"] == "model.keras" and got["run_dir"] == "compact"
    assert got["source_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert got["run"]["dataset"]["root"] == "ferplus" and got["run"]["config"]["weights"] == "start.keras"


# ------------------------------------------------------------------------------------ bench exit, --resume


@pytest.mark.parametrize("case", ["missing-bundle", "corrupt-artifact"])
def test_bench_exits_non_zero_when_a_row_failed(case: str, tmp_path: Path) -> None:
    if case == "missing-bundle":
        target = tmp_path / "no-such-bundle"
    else:
        target, d = copy_bundle(tmp_path / "bundle")
        write_manifest(target, d)
        p = target / "model_int8.tflite"
        p.write_bytes(p.read_bytes()[:-64] + b"\0" * 64)
    out = tmp_path / "out"
    code, _stdout, err = fer_edge("bench", str(target), "--backends", "litert", "--threads", "1", "--warmup", "1",
                                 "--runs", "2", "--rounds", "1", "--min-time", "0", "--batch-sizes", "1",
                                 "--out", str(out), "--quiet")
    assert_one_line_error(code, err, "failed")
    rows = json.loads((out / "results.json").read_text())["runs"][0]["rows"]
    assert rows and all(r["status"] == "failed" for r in rows)


def test_resume_with_no_run_says_so_and_stops(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "empty-run").mkdir()
    before = snapshot(tmp_path)
    res = subprocess.run([sys.executable, "-m", "fer_edge.cli", "train", "--resume", "--out",
                          str(tmp_path / "empty-run"), "--data", f"ferplus={tmp_path / 'data'}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ))
    assert_one_line_error(res.returncode, res.stderr, "--resume", "no run")
    assert changed(before, snapshot(tmp_path)) == []


# --------------------------------------------------------------------------------------------- fuzzing


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=10), kids, max_size=5),
                    max_leaves=30)
VALID = json.loads((DEFAULT / MANIFEST).read_text())


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


FREE_FORM = ("provenance", "evaluation", "options")  # free-form objects: changing them proves little
PATHS = [p for p in _paths(VALID) if p and not any(k in FREE_FORM for k in p)]


def _get(obj: object, path: tuple) -> object:
    for k in path:
        obj = obj[k]
    return obj


def _mutated(path: tuple, value: object, add_key: str | None = None) -> dict:
    """A copy of VALID with the value at ``path`` replaced by ``value``, or (``add_key``) with ``add_key: value``
    added to the object at ``path`` (or to its parent object when it is not one)."""
    d = json.loads(json.dumps(VALID))
    if add_key is not None:
        while not isinstance(_get(d, path), dict):
            path = path[:-1]
        _get(d, path)[add_key] = value
        return d
    _get(d, path[:-1])[path[-1]] = value
    return d


NUMBERS = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)


@FUZZ
@given(JSON)
def test_fuzz_manifest_loader_arbitrary_json(value: object) -> None:
    try:
        Manifest.from_dict(value)
    except ModelError:
        pass


@FUZZ
@given(st.sampled_from(PATHS), JSON | NUMBERS | st.text(max_size=300), st.none() | st.text(max_size=12))
def test_fuzz_manifest_loader_one_value_changed(path: tuple, value: object, add_key: str | None) -> None:
    """A valid manifest with one value anywhere replaced, or one key added: it loads (and then every file name is
    plain and a face prepares to finite numbers) or it is one ModelError."""
    try:
        m = Manifest.from_dict(_mutated(path, value, add_key))
    except ModelError:
        return
    for a in m.artifacts:
        for name in (a.file, *(c["file"] for c in a.companions)):
            assert "/" not in name and "\\" not in name and name not in (".", "..")
    x = m.input.prepare([np.zeros((20, 30), np.uint8), np.full((50, 40, 3), 255, np.uint8)])
    assert x.shape == (2, m.input.height, m.input.width, m.input.channels) and np.isfinite(x).all()


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_fuzz_manifest_file_bytes(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / MANIFEST).write_bytes(data)
        try:
            load_bundle(tmp)
        except ModelError:
            pass


LABEL_READERS = {
    "ferplus label.csv": ("label.csv", lambda p: __import__("fer_edge.data.ferplus", fromlist=["x"])
                          .read_label_csv(p)),
    "rafdb labels": ("list.txt", lambda p: __import__("fer_edge.data.rafdb", fromlist=["x"]).read_labels(p)),
    "ckplus emotion": ("x_emotion.txt", lambda p: __import__("fer_edge.data.ckplus", fromlist=["x"]).read_code(p)),
    "fer2013.csv": ("fer2013.csv", lambda p: __import__("fer_edge.data.fer2013", fromlist=["x"])
                    .read_fer2013_csv(p)),
    "fer2013new.csv": ("fer2013new.csv", lambda p: __import__("fer_edge.data.ferplus_csv", fromlist=["x"])
                       .read_votes(p)),
}
CSVISH = st.lists(st.lists(st.text(max_size=8) | st.integers(-5, 200).map(str), max_size=13), max_size=6).map(
    lambda rows: "\n".join(",".join(r) for r in rows).encode())


@pytest.mark.parametrize("reader", list(LABEL_READERS))
@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | CSVISH)
def test_fuzz_label_readers(reader: str, data: bytes, tmp_path: Path) -> None:
    name, read = LABEL_READERS[reader]
    p = tmp_path / name
    p.write_bytes(data)
    try:
        read(p)
    except FerEdgeError:
        pass


@FUZZ
@given(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\xff\xd8\xff", b"BM", b"II*\0", b"RIFF"]),
       st.binary(max_size=200))
def test_fuzz_image_header(magic: bytes, data: bytes) -> None:
    """Arbitrary bytes behind each format's signature: an image or a reason, never an exception."""
    from fer_edge.data.imageio import decode

    img, why = decode(np.frombuffer(magic + data, np.uint8))
    assert (img is None) == bool(why)
