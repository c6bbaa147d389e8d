"""`fer-edge devices emulate DEPLOY_DIR`: a deploy folder tried on an emulated Raspberry Pi (Debian bookworm
arm64 under qemu-user, see ``rootfs``), the way the device would run it:

1. the folder is copied into the rootfs and ``install.sh`` runs there with no network at all (twice: idempotent);
2. ``run.sh`` runs on a video (FER_EDGE_SOURCE) and is stopped with SIGTERM sent to its process group, as systemd
   stops a service; its JSON lines, summary, exit status and saved video are checked;
3. ``run.sh`` runs the same frames on the emulated Pi and on this machine: parity of faces and labels;
4. ``fer-edge bench`` (tflite int8, a few faces) runs on both and is merged like ``fer-edge report`` does, the
   emulated run marked as such in its device record.

Emulation checks correctness, never speed: under qemu-user everything runs ~100x slower than on a Pi.
"""

from __future__ import annotations

import os
import platform
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fer_edge
from fer_edge import atomic
from fer_edge.devices import parity, rootfs
from fer_edge.devices.rootfs import EmulationError
from fer_edge.errors import FerEdgeError
from fer_edge.runtime.sample import CLIP, SAMPLE_DIR, read_faces
from fer_edge.runtime.video_out import readable_frames

SUMMARY_LINE = re.compile(r"^(\d+) frames, (\d+) faces in [\d.]+ s: [\d.]+ FPS \((.*?)\);", re.M)
GUEST_WORK = "/tmp"  # the work folder lives under the rootfs's /tmp and is removed at the end
Echo = Callable[[str], None]


@dataclass(frozen=True)
class EmulateOptions:
    """Settings of one emulated run (see the CLI's --help for each)."""

    rootfs: Path | None = None
    mirror: str | None = None
    source: Path | None = None
    frames: int | None = None
    stop_after: int = 12
    bench: bool = True
    data: Path | None = None
    bench_faces: int = 200
    bench_threads: int = 1
    install_timeout_s: float = 1800
    run_timeout_s: float = 3600


@dataclass
class Step:
    name: str
    ok: bool | None = None  # None: not run
    seconds: float = 0.0
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 1), "detail": self.detail}


class _Work:
    """The work folder inside the rootfs, as the host (``host``) and the guest (``guest``) see it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = Path(tempfile.mkdtemp(prefix="fer-edge-emulate-", dir=root / GUEST_WORK.lstrip("/")))
        self.guest = f"{GUEST_WORK}/{self.host.name}"
        for sub in ("home", "tmp", "out"):
            (self.host / sub).mkdir()

    def g(self, rel: str) -> str:
        return f"{self.guest}/{rel}"

    def h(self, rel: str) -> Path:
        return self.host / rel


def check_deploy(deploy_dir: Path) -> dict[str, Any]:
    """deploy.json of a `fer-edge deploy` folder for a device the emulator runs (bookworm arm64, no container)."""
    import json

    meta = deploy_dir / "deploy.json"
    try:
        record = json.loads(meta.read_text())
    except OSError:
        raise EmulationError(f"{deploy_dir} is not a `fer-edge deploy` folder (no deploy.json)") from None
    except ValueError as e:
        raise EmulationError(f"{meta}: not JSON ({e})") from None
    prof = record.get("profile") if isinstance(record, dict) else None
    if not isinstance(prof, dict):
        raise EmulationError(f"{meta}: no device profile")
    for name in ("install.sh", "run.sh", "bundle"):
        if not (deploy_dir / name).exists():
            raise EmulationError(f"{deploy_dir} has no {name}: re-create it with `fer-edge deploy`")
    if prof.get("machine") != rootfs.MACHINE or prof.get("container") or prof.get("python") != "3.11":
        raise EmulationError(f"{deploy_dir} is for {prof.get('title', '?')} ({prof.get('os', '?')}): the emulator "
                             "runs Raspberry Pi OS bookworm 64-bit deployments (rpi4, rpi5)")
    return record


def emulate(deploy_dir: str | Path, out: str | Path, opts: EmulateOptions = EmulateOptions(),
            echo: Echo = print) -> dict[str, Any]:
    """Run every step, write ``out`` (emulate.json, parity.json, bench/, report.*, logs/) and return the record.
    A failed check is an EmulationError raised after ``out`` is written; a host that cannot emulate fails first."""
    deploy_dir = Path(deploy_dir)
    deploy = check_deploy(deploy_dir)
    source = Path(opts.source) if opts.source else SAMPLE_DIR / CLIP
    emulator = rootfs.enable_binfmt(echo)
    info = rootfs.ensure_rootfs(opts.rootfs, opts.mirror, echo=echo)
    root = Path(info["path"])
    echo(f"rootfs {root} ({'reused' if info['reused'] else 'built in ' + str(info['build_s']) + ' s'}); {emulator}")
    steps: list[Step] = []
    record: dict[str, Any] = {
        "kind": "fer-edge-emulate", "device": deploy.get("device"), "deploy": _deploy_summary(deploy),
        "emulation": {"method": "qemu-user", "emulator": emulator, "rootfs": info,
                      "guest": f"Debian {rootfs.SUITE} {rootfs.DEB_ARCH} (Raspberry Pi OS base), no network"},
        "host": _host(), "fer_edge_host": fer_edge.__version__, "source": str(source), "steps": steps,
    }
    work = _Work(root)
    record["emulation"]["work"] = work.guest  # removed at the end
    try:
        with atomic.atomic_dir(out) as tmp_out:
            run = _Runner(root, work, tmp_out, emulator, echo)
            _steps(run, deploy_dir, source, opts, record, steps)
            record["ok"] = all(s.ok for s in steps if s.ok is not None)
            atomic.write_json(tmp_out / "emulate.json", _finish(record))
    finally:
        shutil.rmtree(work.host, ignore_errors=True)
    failed = [s for s in steps if s.ok is False]
    if failed:
        raise EmulationError(f"{len(failed)} check(s) failed on the emulated device: "
                             + "; ".join(f"{s.name}: {s.detail}" for s in failed) + f" (see {out}/emulate.json)")
    return record


def _steps(run: _Runner, deploy_dir: Path, source: Path, opts: EmulateOptions, record: dict[str, Any],
           steps: list[Step]) -> None:
    work = run.work
    with run.step(steps, "copy", "deploy folder and source copied into the rootfs"):
        shutil.copytree(deploy_dir, work.h("deploy"), symlinks=True, ignore=shutil.ignore_patterns(".venv"))
        shutil.copy2(source, work.h("source" + source.suffix))
    src_g = work.g("source" + source.suffix)
    for name, what in (("install", "install.sh, no network"), ("install-again", "install.sh again: idempotent")):
        if all(s.ok for s in steps):
            with run.step(steps, name, what) as st:
                st.detail = run.install(again=name != "install")
    if not all(s.ok for s in steps):
        steps += [Step(name, None, 0.0, f"skipped: {steps[-1].name} failed")
                  for name in ("install", "install-again", "lifecycle", "parity", "bench")
                  if name not in {s.name for s in steps}]
        return
    with run.step(steps, "lifecycle", "run.sh stopped with SIGTERM") as st:
        record["lifecycle"] = run.lifecycle(src_g, opts.stop_after, opts.run_timeout_s)
        st.detail = record["lifecycle"]["detail"]
    with run.step(steps, "parity", "same frames on x86 and the emulated device") as st:
        record["parity"] = run.parity(src_g, source, opts.frames, opts.run_timeout_s)
        p = record["parity"]["vs_x86"]
        st.detail = (f"{p['frames_same_face_count']}/{p['frames']} frames same face count, labels agree on "
                     f"{p['labels_agreeing']}/{p['faces_matched']} matched faces")
    if opts.bench:
        with run.step(steps, "bench", "fer-edge bench on both, merged") as st:
            record["bench"] = run.bench(opts, record["deploy"]["device"])
            st.detail = record["bench"]["detail"]


class _Runner:
    """Runs guest commands (chroot, no network) and the host's reference commands, logging to ``out``/logs."""

    def __init__(self, root: Path, work: _Work, out: Path, emulator: str, echo: Echo) -> None:
        self.root, self.work, self.out, self.echo = root, work, out, echo
        (out / "logs").mkdir()
        self.guest_env = {"HOME": work.g("home"), "TMPDIR": work.g("tmp"), "PYTHONUNBUFFERED": "1",
                          "FER_EDGE_EMULATION": f"qemu-user: {emulator} on {platform.machine()} "
                                                f"({_host()['cpu']})"}
        host_bin = Path(sys.executable).with_name("fer-edge")
        self.host_fer_edge = str(host_bin) if host_bin.is_file() else shutil.which("fer-edge")
        if self.host_fer_edge is None:
            raise EmulationError("no fer-edge executable on this machine for the x86 reference runs")
        (work.h("home-x86")).mkdir()
        self.host_env = {**os.environ, "HOME": str(work.h("home-x86")), "PYTHONUNBUFFERED": "1",
                         "FER_EDGE_VENV": str(Path(self.host_fer_edge).parent.parent)}
        self.host_env.pop("FER_EDGE_EMULATION", None)

    @contextmanager
    def step(self, steps: list[Step], name: str, what: str) -> Iterator[Step]:
        """A recorded step: a FerEdgeError or OSError inside marks it failed (with the message) and is swallowed."""
        st = Step(name, None, 0.0, what)
        steps.append(st)
        self.echo(f"[{name}] {what} ...")
        t0 = time.monotonic()
        try:
            yield st
        except (FerEdgeError, OSError) as e:
            st.ok, st.detail = False, str(e)
        else:
            st.ok = True
        st.seconds = time.monotonic() - t0
        self.echo(f"[{name}] {'ok' if st.ok else 'FAILED'} in {st.seconds:.0f} s: {st.detail}")

    def guest(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str = "/") -> list[str]:
        return rootfs.chroot_command(self.root, argv, {**self.guest_env, **(env or {})}, cwd)

    def _run(self, cmd: list[str], log: str, timeout_s: float, env: Mapping[str, str] | None = None,
             what: str = "") -> str:
        """Run ``cmd`` in its own process group, output appended to logs/``log``; a timeout or an interrupt kills
        the whole group (a guest command's children too, so nothing holds the namespace)."""
        with (self.out / "logs" / log).open("a", encoding="utf-8") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                    env=dict(env) if env is not None else None)
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise EmulationError(f"{what or log} did not finish in {timeout_s:.0f} s") from None
            except BaseException:
                _kill(proc)
                raise
        text = (self.out / "logs" / log).read_text(encoding="utf-8", errors="replace")
        if rc != 0:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise EmulationError(f"{what or log} exited {rc}: {tail}")
        return text

    def install(self, again: bool = False) -> str:
        t0 = time.monotonic()
        self._run(self.guest(["/bin/bash", self.work.g("deploy/install.sh")], cwd=self.work.g("deploy")),
                  "install.log", timeout_s=1800, what="install.sh (offline, in the emulated device)")
        fer = self.work.h("deploy/.venv/bin/fer-edge")
        if not fer.is_file():
            raise EmulationError("install.sh finished but left no .venv/bin/fer-edge in the deploy folder")
        if again:
            return f"ran again on the installed venv in {time.monotonic() - t0:.0f} s, exit 0, no network"
        wheels = len(list(self.work.h("deploy/wheels").glob("*.whl")))
        return f"{wheels} wheels installed with no network in {time.monotonic() - t0:.0f} s"

    def _run_sh(self, args: Sequence[str], source_g: str) -> list[str]:
        return self.guest(["/bin/bash", self.work.g("deploy/run.sh"), *args],
                          {"FER_EDGE_SOURCE": source_g}, cwd=self.work.g("deploy"))

    def lifecycle(self, source_g: str, stop_after: int, timeout_s: float) -> dict[str, Any]:
        """run.sh --json - --save: SIGTERM to its process group after ``stop_after`` JSON lines; then exit 0,
        every line a valid frame record, the summary on stderr, a readable video."""
        video_g = self.work.g("out/lifecycle.mp4")
        cmd = self._run_sh(["--json", "-", "--save", video_g], source_g)
        err_path = self.out / "logs" / "lifecycle.stderr"
        lines: list[str] = []
        with err_path.open("w", encoding="utf-8") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
            q: queue.Queue[str | None] = queue.Queue()
            reader = threading.Thread(target=_pump, args=(proc.stdout, q), daemon=True)
            reader.start()
            deadline, signalled, t_first = time.monotonic() + timeout_s, None, None
            try:
                while True:
                    try:
                        line = q.get(timeout=max(0.1, deadline - time.monotonic()))
                    except queue.Empty:
                        raise EmulationError(f"run.sh did not stop within 300 s of SIGTERM ({len(lines)} lines)"
                                             if signalled else f"run.sh gave {len(lines)} JSON lines in "
                                             f"{timeout_s:.0f} s") from None
                    if line is None:
                        break
                    if line.lstrip().startswith("{"):
                        lines.append(line)
                        t_first = t_first or time.monotonic()
                    if signalled is None and len(lines) >= stop_after:
                        os.killpg(proc.pid, signal.SIGTERM)
                        signalled = time.monotonic()
                        deadline = signalled + 300
                rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise EmulationError(f"run.sh did not exit within 300 s of SIGTERM ({len(lines)} lines)") from None
            except BaseException:
                _kill(proc)
                raise
            finally:
                reader.join(timeout=5)
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        atomic.write_text(self.out / "logs" / "lifecycle.jsonl", "".join(lines))
        if signalled is None:
            raise EmulationError(f"run.sh ended (exit {rc}) after {len(lines)} JSON lines, before SIGTERM: "
                                 f"{_tail(stderr)}")
        records = parity.parse_lines(lines, "run.sh --json -")
        summary = SUMMARY_LINE.search(stderr)
        result = {"json_lines": len(records), "exit_code": rc, "stop_s": round(time.monotonic() - signalled, 1),
                  "signal": "SIGTERM to the process group (as systemd's KillMode=control-group)",
                  "summary": summary.group(0) if summary else None,
                  "stopped_by": summary.group(3) if summary else None}
        if rc != 0:
            raise EmulationError(f"run.sh exited {rc} on SIGTERM (want 0): {_tail(stderr)}")
        if summary is None:
            raise EmulationError(f"run.sh printed no summary after SIGTERM: {_tail(stderr)}")
        if int(summary.group(1)) != len(records):
            raise EmulationError(f"summary says {summary.group(1)} frames, {len(records)} JSON lines were written")
        result["video_frames"] = readable_frames(self.work.h("out/lifecycle.mp4"))
        if not result["video_frames"]:
            raise EmulationError("the --save video is missing or unreadable after SIGTERM")
        result["detail"] = (f"{len(records)} valid JSON lines, exit 0 {result['stop_s']} s after SIGTERM "
                            f"({result['stopped_by']}), video {result['video_frames']} frames")
        return result

    def parity(self, source_g: str, source: Path, frames: int | None, timeout_s: float) -> dict[str, Any]:
        """The same run.sh on the same frames in the guest and on this machine; compared frame by frame."""
        limit = ["--max-frames", str(frames)] if frames else []
        emu_g = self.work.g("out/parity-emulated.jsonl")
        t0 = time.monotonic()
        self._run(self._run_sh(["--json", emu_g, *limit], source_g), "parity-emulated.log", timeout_s,
                  what="run.sh (parity, emulated)")
        emu_s = time.monotonic() - t0
        x86 = self.out / "frames" / "x86.jsonl"
        x86.parent.mkdir(exist_ok=True)
        env = {**self.host_env, "FER_EDGE_SOURCE": str(self.work.h("source" + source.suffix))}
        t0 = time.monotonic()
        self._run(["/bin/bash", str(self.work.h("deploy/run.sh")), "--json", str(x86), *limit],
                  "parity-x86.log", timeout_s, env=env, what="run.sh (parity, x86)")
        x86_s = time.monotonic() - t0
        shutil.copy2(self.work.h("out/parity-emulated.jsonl"), self.out / "frames" / "emulated.jsonl")
        ref, emu = parity.read_jsonl(x86), parity.read_jsonl(self.out / "frames" / "emulated.jsonl")
        doc: dict[str, Any] = {"source": source.name, "frames_requested": frames, "vs_x86": parity.compare(ref, emu),
                               "seconds": {"emulated": round(emu_s, 1), "x86": round(x86_s, 1)},
                               "fps": {"emulated": _fps(len(emu), emu_s), "x86": _fps(len(ref), x86_s)},
                               "note": "run.sh as deployed, same source and frames; fps includes start-up"}
        if source.resolve() == (SAMPLE_DIR / CLIP).resolve():
            faces = read_faces()
            doc["sample_truth"] = {"x86": parity.truth(ref, faces), "emulated": parity.truth(emu, faces)}
        atomic.write_json(self.out / "parity.json", doc)
        p = doc["vs_x86"]
        if p["faces_x86"] and p["faces_matched"] < p["faces_x86"] / 2:
            raise EmulationError(f"the emulated device matched {p['faces_matched']} of the {p['faces_x86']} faces "
                                 "x86 found (sanity floor: half)")
        return doc

    def bench(self, opts: EmulateOptions, device: str) -> dict[str, Any]:
        """`fer-edge bench` of the deployed bundle (tflite int8, litert, few faces) on both; report merged."""
        from fer_edge.benchmarks import results as res
        from fer_edge.benchmarks.html import html_report
        from fer_edge.benchmarks.render import markdown

        args = ["--formats", "tflite", "--precisions", "int8", "--backends", "litert",
                "--threads", str(opts.bench_threads), "--warmup", "3", "--runs", "20", "--rounds", "1",
                "--min-time", "0", "--batch-sizes", "1", "--quiet", "--timeout", str(int(opts.run_timeout_s))]
        if opts.data is not None:
            n = _export_faces(Path(opts.data), opts.bench_faces, self.work.h("faces"))
            self.echo(f"[bench] {n} faces of {opts.data} for the accuracy column")

        def bundle_args(faces: str, bundle: str) -> list[str]:
            return [bundle, *(["--data", faces] if opts.data is not None else [])]

        emu_name, x86_name = f"{device}-emulated (qemu-user)", f"{platform.machine()}-host"
        fer_g = self.work.g("deploy/.venv/bin/fer-edge")
        self._run(self.guest([fer_g, "bench", *bundle_args(self.work.g("faces"), self.work.g("deploy/bundle")),
                              *args, "--device-name", emu_name, "--out", self.work.g("out/bench")]),
                  "bench-emulated.log", opts.run_timeout_s, what="fer-edge bench (emulated)")
        self._run([self.host_fer_edge, "bench", *bundle_args(str(self.work.h("faces")), str(self.work.h(
            "deploy/bundle"))), *args, "--device-name", x86_name, "--out", str(self.out / "bench" / "x86")],
                  "bench-x86.log", opts.run_timeout_s, env=self.host_env, what="fer-edge bench (x86)")
        shutil.copytree(self.work.h("out/bench"), self.out / "bench" / "emulated")
        runs = [res.load(self.out / "bench" / "emulated"), res.load(self.out / "bench" / "x86")]
        emu_dev = runs[0]["runs"][0]["device"]
        if not emu_dev.get("emulated"):
            raise EmulationError("the emulated bench record carries no `emulated` marker in its device section")
        doc = res.merge(runs)
        atomic.write_json(self.out / "report.json", doc)
        atomic.write_text(self.out / "report.md", markdown(doc))
        atomic.write_text(self.out / "report.html", html_report(doc, "fer-edge: emulated Raspberry Pi vs x86"))
        rows = {r["device"]["name"]: r["rows"] for r in doc["runs"]}
        summary = {name: [{k: row.get(k) for k in ("model", "format", "precision", "threads", "status",
                                                    "latency_p50_ms", "accuracy", "macro_f1", "eval_faces")}
                          for row in rs] for name, rs in rows.items()}
        ok = [name for name, rs in rows.items() if not any(r.get("status") == "failed" for r in rs)]
        detail = f"{len(doc['runs'])} runs merged ({', '.join(rows)}); rows without failure on {len(ok)} of them"
        if len(ok) != len(rows):
            raise EmulationError(f"bench rows failed: {summary}")
        accs = [rs[0].get("accuracy") for rs in rows.values() if rs]
        delta = round(100 * (accs[0] - accs[1]), 2) if len(accs) == 2 and None not in accs else None
        if delta is not None:
            detail += f"; accuracy {100 * accs[0]:.1f}% emulated vs {100 * accs[1]:.1f}% x86"
        return {"detail": detail, "emulated_device": emu_dev, "rows": summary, "accuracy_delta_pp": delta,
                "faces": opts.bench_faces if opts.data is not None else None}


def _export_faces(data: Path, limit: int, dest: Path) -> int:
    """``limit`` labelled test faces of any dataset, as a class-folder tree both machines read alike."""
    import cv2

    from fer_edge.benchmarks.accuracy import load_faces
    from fer_edge.labels import EMOTIONS

    faces = load_faces(data, limit=limit)
    if faces.labels is None:
        raise EmulationError(f"{data} has no labelled faces for the bench accuracy column")
    for i, (img, lab) in enumerate(zip(faces.images, faces.labels, strict=True)):
        if lab < 0:
            continue
        folder = dest / "test" / EMOTIONS[int(lab)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:05d}.png"), img)
    return len(faces.images)


def _pump(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _fps(frames: int, seconds: float) -> float | None:
    return round(frames / seconds, 2) if seconds > 0 else None


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-3:]) or "(no output)"


def _deploy_summary(deploy: dict[str, Any]) -> dict[str, Any]:
    return {k: deploy.get(k) for k in ("device", "backend", "precision", "threads", "artifacts", "fer_edge")}


def _host() -> dict[str, Any]:
    from fer_edge.benchmarks.sysinfo import cpu_model, os_name

    return {"arch": platform.machine(), "cpu": cpu_model(), "os": os_name(), "cores": os.cpu_count()}


def _finish(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "steps": [s.as_dict() for s in record["steps"]]}
