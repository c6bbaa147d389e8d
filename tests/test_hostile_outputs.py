"""Hostile outputs (issue 14, items 5-10): full disks (a small tmpfs), I/O errors, read-only file systems, outputs
onto the source, colliding image names, writers killed mid-write. Each case builds the situation, runs the real
CLI (a subprocess, or ``fer_edge.cli.main`` where a write error is stood in for) and asserts one error line, the
exit status and that nothing else was lost or changed. Runs on the default bundle: no TensorFlow needed."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from helpers.runtime import face_frame, mjpeg_server, readable_frames, sample_clip

from fer_edge import atomic

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
CLIP_FRAMES = 216


def fer_edge(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fer_edge.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=ENV)


def one_error(stderr: str) -> str:
    """The single ``error:`` line (and no traceback)."""
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small private file system (root only); skipped with the reason where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(res.stderr or res.stdout).strip()[:120]}): needs root")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --- full disks, I/O errors, read-only file systems: the failed output is reported, the others kept -------------

def test_full_disk_video_is_not_saved_and_the_json_is_kept(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "200k") as small:
        res = fer_edge("run", "--source", str(sample_clip()), "--save", str(small / "v.mp4"),
                       "--json", str(tmp_path / "j.jsonl"))
        left = sorted(p.name for p in small.iterdir())
    assert res.returncode == 1, res.stderr[-2000:]
    line = one_error(res.stderr)
    assert f"--save {small / 'v.mp4'}: no space left on device" in line and "(the others were kept)" in line
    assert f"saved: {small / 'v.mp4'}\n" not in res.stdout + "\n" and "saved: FAILED" in res.stdout
    assert left == []  # no half-written video, no temp file
    records = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert len(records) == CLIP_FRAMES and [r["frame"] for r in records] == list(range(CLIP_FRAMES))


def test_full_disk_with_no_other_output_stops_the_run(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "200k") as small:
        res = fer_edge("run", "--source", str(sample_clip()), "--save", str(small / "v.mp4"))
        left = sorted(p.name for p in small.iterdir())
    assert res.returncode == 1, res.stderr[-2000:]
    line = one_error(res.stderr)
    assert line.startswith("error: output failed: --save") and "no space left on device" in line
    assert "(every output failed)" in res.stdout and int(res.stdout.split(" frames,")[0]) < CLIP_FRAMES
    assert left == []


def test_full_disk_json_fails_and_the_video_is_kept(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "48k") as small:
        res = fer_edge("run", "--source", str(sample_clip()), "--json", str(small / "j.jsonl"),
                       "--save", str(tmp_path / "v.mp4"))
        left = sorted(p.name for p in small.iterdir())
    assert res.returncode == 1, res.stderr[-2000:]
    assert "--json " in one_error(res.stderr) and "No space left on device" in one_error(res.stderr)
    assert left == []
    assert readable_frames(tmp_path / "v.mp4") == CLIP_FRAMES  # the whole clip: the run went on without the json


def test_full_disk_mid_segments_keeps_the_finished_segments(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "1100k") as small:
        res = fer_edge("run", "--source", str(sample_clip()), "--save", str(small / "cam.mp4"), "--segment", "10",
                       "--json", str(tmp_path / "cam.jsonl"))
        kept = sorted(small.iterdir())
        frames = [readable_frames(p) for p in kept]
    assert res.returncode == 1, res.stderr[-2000:]
    assert "no space left on device" in one_error(res.stderr)
    assert kept and all(p.name.startswith("cam-0000") for p in kept)  # finished segments only, no temp
    assert all(n > 0 for n in frames) and sum(frames) < CLIP_FRAMES
    assert len((tmp_path / "cam.jsonl").read_text().splitlines()) == CLIP_FRAMES


def test_read_only_output_is_refused_before_anything_is_replaced(tmp_path: Path) -> None:
    old = tmp_path / "j.jsonl"
    old.write_text('{"old": true}\n')
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        res = fer_edge("run", "--source", str(sample_clip()), "--json", str(old), "--save", str(ro / "v.mp4"))
    assert res.returncode == 1, res.stderr[-2000:]
    assert f"--save {ro / 'v.mp4'}: Read-only file system" in one_error(res.stderr)
    assert old.read_text() == '{"old": true}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl", "ro"]


def _main(args: list[str]) -> int:
    from fer_edge.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_an_io_error_on_the_json_keeps_the_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from fer_edge.runtime.outputs import JsonLinesSink

    real, calls = JsonLinesSink.write, []

    def failing(self: JsonLinesSink, *args: object) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(self, *args)

    monkeypatch.setattr(JsonLinesSink, "write", failing)
    rc = _main(["run", "--source", str(sample_clip()), "--max-frames", "40", "--save", str(tmp_path / "v.mp4"),
                "--json", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 1 and f"--json {tmp_path / 'j.jsonl'}: Input/output error" in one_error(err)
    assert readable_frames(tmp_path / "v.mp4") == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # the failed json's temp file removed


def test_an_io_error_on_the_video_keeps_the_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from fer_edge.runtime import video_out

    real, calls = video_out.check_disk, []

    def failing(path: Path, label: str) -> None:
        calls.append(1)
        if len(calls) == 10:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path, label)

    monkeypatch.setattr(video_out, "check_disk", failing)
    rc = _main(["run", "--source", str(sample_clip()), "--max-frames", "30", "--save", str(tmp_path / "v.mp4"),
                "--json", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err
    assert rc == 1 and f"--save {tmp_path / 'v.mp4'}: Input/output error" in one_error(err)
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl"]


# --- outputs that would overwrite the source ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["save", "json", "symlink", "hardlink", "relative"])
def test_output_onto_the_source_file_is_refused(tmp_path: Path, case: str) -> None:
    src = tmp_path / "x.mp4"
    shutil.copy(sample_clip(), src)
    if case == "symlink":
        (tmp_path / "link.mp4").symlink_to(src)
    if case == "hardlink":
        os.link(src, tmp_path / "hard.mp4")
    before = digest(tmp_path)
    out = {"save": ["--save", str(src)], "json": ["--json", str(src)],
           "symlink": ["--save", str(tmp_path / "link.mp4")], "hardlink": ["--save", str(tmp_path / "hard.mp4")],
           "relative": ["--save", str(tmp_path / "sub" / ".." / "x.mp4")]}[case]
    res = fer_edge("run", "--source", str(src), "--max-frames", "5", *out)
    assert res.returncode == 2
    assert "is the source; write the output somewhere else" in one_error(res.stderr)
    assert digest(tmp_path) == before


@pytest.mark.parametrize("out", [["--save", "{src}"], ["--save", "{src}/annotated"], ["--json", "{src}/r.jsonl"],
                                 ["--save", "{src}/v.mp4"]])
def test_output_into_a_source_folder_is_refused(tmp_path: Path, out: list[str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(photos / name), face_frame(size=(160, 120)))
    before = sorted(p.name for p in tmp_path.rglob("*")), digest(photos)
    res = fer_edge("run", "--source", str(photos), "--redact", *[a.replace("{src}", str(photos)) for a in out])
    assert res.returncode == 2
    line = one_error(res.stderr)
    assert "is the source" in line or "is inside the source folder" in line
    assert (sorted(p.name for p in tmp_path.rglob("*")), digest(photos)) == before


def test_saving_an_image_into_its_own_folder_is_refused(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), face_frame(size=(160, 120)))
    before = digest(tmp_path)
    res = fer_edge("run", "--source", str(tmp_path / "a.png"), "--save", str(tmp_path), "--redact")
    assert res.returncode == 2 and "would overwrite the source" in one_error(res.stderr)
    assert digest(tmp_path) == before


def test_save_and_json_naming_one_file_is_refused(tmp_path: Path) -> None:
    res = fer_edge("run", "--source", str(sample_clip()), "--save", str(tmp_path / "o.mp4"),
                   "--json", str(tmp_path / "o.mp4"))
    assert res.returncode == 2 and "--save and --json name the same file" in one_error(res.stderr)
    assert list(tmp_path.iterdir()) == []


# --- image names that used to collide --------------------------------------------------------------------------

def test_images_of_one_stem_stay_three_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for ext in (".png", ".jpg", ".bmp"):
        cv2.imwrite(str(src / f"face{ext}"), face_frame(size=(160, 120)))
    res = fer_edge("run", "--source", str(src), "--save", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["face.bmp", "face.jpg", "face.png"]
    magic = {".png": b"\x89PNG", ".jpg": b"\xff\xd8", ".bmp": b"BM"}
    assert all((out / f"face{e}").read_bytes().startswith(m) for e, m in magic.items())  # each in its own format
    assert "(3 images)" in res.stdout


# --- killed writers: their temps are swept by the next start, nothing else is touched -----------------------------

def test_a_killed_run_leaves_the_previous_outputs_and_its_temps_are_swept(tmp_path: Path) -> None:
    video, jsonl = tmp_path / "v.mp4", tmp_path / "j.jsonl"
    res = fer_edge("run", "--source", str(sample_clip()), "--max-frames", "12", "--save", str(video),
                   "--json", str(jsonl))
    assert res.returncode == 0, res.stderr[-2000:]
    before = digest(tmp_path)
    alive = tmp_path / f".v.mp4.{os.getpid()}.abcdefgh.tmp.mp4"  # a live writer's temp: never taken
    alive.write_bytes(b"in use")
    hour_ago = time.time() - 3600
    os.utime(alive, (hour_ago, hour_ago))
    with mjpeg_server(face_frame(size=(320, 240)), fps=30) as srv:
        proc = subprocess.Popen([sys.executable, "-m", "fer_edge.cli", "run", "--source", srv.url, "--save",
                                 str(video), "--json", str(jsonl)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=REPO, env=ENV)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            temps = [p for p in tmp_path.iterdir() if p.name.startswith(".j.jsonl.") and p.stat().st_size > 2000]
            if temps:
                break
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    killed = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p != alive)
    assert len(killed) == 2 and all(f".{proc.pid}." in n for n in killed)
    assert {k: v for k, v in digest(tmp_path).items() if not k.startswith(".")} == before  # old outputs intact
    res = fer_edge("run", "--source", str(sample_clip()), "--max-frames", "6", "--save", str(video),
                   "--json", str(jsonl))
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "j.jsonl", "v.mp4"])
    assert len(jsonl.read_text().splitlines()) == 6 and readable_frames(video) == 6


def test_a_power_cut_torn_json_line_is_cut_off_on_the_next_segmented_start(tmp_path: Path) -> None:
    jsonl = tmp_path / "cam.jsonl"
    jsonl.write_text('{"time":0.0,"frame":0,"faces":[]}\n{"time":0.2,"fra')
    res = fer_edge("run", "--source", str(sample_clip()), "--max-frames", "4", "--json", str(jsonl),
                   "--segment", "5")
    assert res.returncode == 0, res.stderr[-2000:]
    records = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(records) == 5 and records[0]["frame"] == 0 and [r["frame"] for r in records[1:]] == [0, 1, 2, 3]


def _commit_dies(target: Path, new: str, where: str) -> subprocess.CompletedProcess[str]:
    """A process replacing ``target`` by ``atomic_dir`` that dies at ``where``: between the fallback's two
    renames ("between"), or after the exchange, before the old folder is removed ("after-exchange")."""
    code = f"""
import os
from pathlib import Path
from fer_edge import atomic
if {where!r} == "between":
    atomic.exchange = lambda a, b: False
    real, calls = os.replace, []
    def replace(a, b):
        calls.append(1)
        if len(calls) == 2:
            os._exit(9)
        real(a, b)
    os.replace = replace
else:
    atomic._remove = lambda p: os._exit(9)
with atomic.atomic_dir({str(target)!r}) as tmp:
    (tmp / "data.txt").write_text({new!r})
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)


def _next_start(target: Path, new: str | None) -> None:
    """A later process: recover only, or write the folder again."""
    code = f"from fer_edge import atomic\nt = {str(target)!r}\n" + (
        "atomic.recover_dir(t)\n" if new is None else
        f"with atomic.atomic_dir(t) as d:\n    (d / 'data.txt').write_text({new!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=REPO)


def test_atomic_dir_killed_between_the_renames_is_recovered(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "data.txt").write_text("old")
    assert _commit_dies(target, "new", "between").returncode == 9
    left = sorted(p.name.rsplit(".", 1)[1] for p in tmp_path.iterdir())
    assert not target.exists() and left == ["old", "tmp-dir"]  # the old folder moved aside, the new one not in place
    _next_start(target, None)
    assert (target / "data.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_atomic_dir_killed_after_the_exchange_keeps_the_new_folder(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "data.txt").write_text("old")
    probe = tmp_path / "probe"
    probe.mkdir()
    if not atomic.exchange(probe, target):
        pytest.skip("this file system cannot exchange folders atomically (the fallback is tested above)")
    atomic.exchange(probe, target)  # back as it was
    probe.rmdir()
    assert _commit_dies(target, "new", "after-exchange").returncode == 9
    assert (target / "data.txt").read_text() == "new"
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".bundle.")]) == 1  # the old one, left over
    _next_start(target, "newer")
    assert (target / "data.txt").read_text() == "newer" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_atomic_dir_never_leaves_the_target_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the OS exchanges folders, nothing ever renames the old folder away: there is no moment without one."""
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "data.txt").write_text("old")
    probe = tmp_path / "p"
    probe.mkdir()
    if not atomic.exchange(probe, target):
        pytest.skip("this file system cannot exchange folders atomically")
    atomic.exchange(probe, target)
    probe.rmdir()
    real = os.replace

    def replace(a: object, b: object) -> None:
        assert Path(str(a)) != target, "the old folder was renamed away"
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with atomic.atomic_dir(target) as tmp:
        (tmp / "data.txt").write_text("new")
    assert (target / "data.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_stale_conversion_work_folders_and_hidden_temps_are_swept(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What a killed `fer-edge convert` leaves: ``fer-edge-convert-PID-*`` in the temp dir and a hidden temp folder
    beside --out. Only those of dead processes, older than this one, go."""
    dead = dead_pid()
    names = {"dead": f"fer-edge-convert-{dead}-x1", "alive": f"fer-edge-convert-{os.getpid()}-x2",
             "other": "fer-edge-convert-abc", "unrelated": f"someone-{dead}-x"}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.onnx").write_bytes(b"x" * 1000)
    out = tmp_path / "out"
    hidden = tmp_path / f".out.{dead}.abcdefgh.tmp-dir"
    hidden.mkdir()
    young = tmp_path / f".out.{dead}.ijklmnop.tmp-dir"
    young.mkdir()
    old = time.time() - 600
    for p in [*(tmp_path / n for n in names.values()), hidden]:
        os.utime(p, (old, old))
    monkeypatch.setattr(atomic, "STARTED", time.time() - 60)  # this "process" started a minute ago
    os.utime(young, (time.time(), time.time()))
    removed = atomic.sweep_temp_root("fer-edge-convert-", tmp_path)
    assert [p.name for p in removed] == [names["dead"]]
    with atomic.atomic_dir(out) as d:
        (d / "manifest.json").write_text("{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert hidden.name not in left and young.name in left and "out" in left
    assert all(names[k] in left for k in ("alive", "other", "unrelated"))
