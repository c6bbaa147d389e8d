"""`fer-edge devices list|show`, `fer-edge doctor`, `fer-edge deploy`: parse, call the library, print."""

from __future__ import annotations

import json

import click

from fer_edge.bundle import PRECISIONS
from fer_edge.devices.profiles import PROFILES
from fer_edge.errors import FerEdgeError


@click.group("devices")
def devices() -> None:
    """Device profiles: Raspberry Pi 4/5, Jetson Nano / Orin Nano, x86."""


@devices.command("list")
def list_devices() -> None:
    """One line per profile: what it runs."""
    rows = [("name", "device", "runs", "threads", "python")]
    rows += [(p.name, p.title, f"{p.backend} {p.format}/{p.precision}", str(p.threads), p.python)
             for _, p in PROFILES.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@devices.command("show")
@click.argument("name", type=click.Choice(PROFILES.names()))
@click.option("--json", "as_json", is_flag=True, help="The profile as JSON.")
def show(name: str, as_json: bool) -> None:
    """Everything about one profile: hardware, recommended backend, install lines, pitfalls."""
    p = PROFILES.get(name)
    if as_json:
        click.echo(json.dumps(p.as_dict(), indent=2))
        return
    extras = f" (+ {', '.join(p.extra_artifacts)})" if p.extra_artifacts else ""
    click.echo("\n".join([
        f"{p.title} [{p.name}]", f"  cpu:       {p.cpu} ({p.cores} cores, {p.machine})", f"  memory:    {p.memory}",
        f"  os:        {p.os}", f"  python:    {p.python}",
        f"  runs:      {p.backend} {p.format}/{p.precision}{extras}, {p.threads} threads",
        f"  container: {p.container['base']}" if p.container else "  container: no",
        "  install:", *(f"    {line}" for line in p.install),
        "  requirements:", *(f"    {r}" for r in p.requirements),
        "  pitfalls:", *(f"    - {x}" for x in p.pitfalls),
        *([f"  notes: {p.notes}"] if p.notes else []),
    ]))


@devices.command("emulate")
@click.argument("deploy_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--rootfs", type=click.Path(file_okay=False), help="Cached Debian bookworm arm64 rootfs, built here "
              "on first use  [default: $FER_EDGE_PI_ROOTFS or /var/cache/fer-edge/pi-rootfs]")
@click.option("--mirror", help="Debian mirror for building it (default: this machine's, else deb.debian.org).")
@click.option("--source", type=click.Path(exists=True, dir_okay=False), help="Video for run.sh "
              "(FER_EDGE_SOURCE; default: the bundled sample clip, scored against its known faces).")
@click.option("--frames", type=click.IntRange(min=1), help="Frames of it for the parity runs (default: all).")
@click.option("--stop-after", type=click.IntRange(min=1), default=12, show_default=True,
              help="JSON lines before run.sh is sent SIGTERM.")
@click.option("--bench/--no-bench", default=True, show_default=True, help="Also fer-edge bench on both, merged.")
@click.option("--data", type=click.Path(exists=True), help="Dataset for the bench accuracy column (any `fer-edge "
              "data` layout; its test split). Without it, latency only.")
@click.option("--bench-faces", type=click.IntRange(min=1), default=200, show_default=True,
              help="Faces of --data (emulation is ~100x slower).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="emulate-results", show_default=True,
              help="Folder for emulate.json, parity.json, bench/, report.html|md|json, logs/.")
def emulate(deploy_dir: str, rootfs: str | None, mirror: str | None, source: str | None, frames: int | None,
            stop_after: int, bench: bool, data: str | None, bench_faces: int, out: str) -> None:
    """Try DEPLOY_DIR (from `fer-edge deploy --device rpi5|rpi4`) on an emulated Raspberry Pi: Debian bookworm
    arm64 under qemu-user, no network. Installs it offline, runs run.sh on a video and stops it with SIGTERM,
    compares faces and labels with this machine, benches both. Needs root, binfmt_misc and qemu-user-static.

    \b
    apt-get install -y qemu-user-static debootstrap binfmt-support
    fer-edge deploy --device rpi5 --bundle fer_edge/assets/default_bundle --out dist/rpi5 --wheels
    fer-edge devices emulate dist/rpi5 --data ../shared/data/ferplus --out results/rpi-emulated  # as root
    """
    from pathlib import Path

    from fer_edge.devices.emulate import EmulateOptions
    from fer_edge.devices.emulate import emulate as run_emulation

    opts = EmulateOptions(rootfs=Path(rootfs) if rootfs else None, mirror=mirror, source=Path(source) if source
                          else None, frames=frames, stop_after=stop_after, bench=bench,
                          data=Path(data) if data else None, bench_faces=bench_faces)
    record = run_emulation(deploy_dir, out, opts, echo=click.echo)
    p = record.get("parity", {}).get("vs_x86", {})
    click.echo(f"{out}: all checks passed on the emulated {record['device']} ({record['emulation']['emulator']}); "
               f"parity: {p.get('frames_same_face_count')}/{p.get('frames')} frames same face count, labels agree "
               f"on {p.get('labels_agreeing')}/{p.get('faces_matched')} matched faces")


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--camera", "camera_index", type=int, default=0, show_default=True, help="Camera index to try.")
@click.option("--camera-timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for it.")
@click.option("--no-camera", is_flag=True, help="Do not open the camera (list /dev/video* only).")
def doctor(as_json: bool, camera_index: int, camera_timeout: float, no_camera: bool) -> None:
    """What this machine is, which backends work, whether a camera answers, and the profile to use."""
    from fer_edge.devices.doctor import diagnose, render

    report = diagnose(camera_index, camera_timeout, probe_camera=not no_camera)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))


@click.command("deploy")
@click.option("--device", required=True, type=click.Choice(PROFILES.names()), help="Target device profile.")
@click.option("--bundle", "bundle", required=True, type=click.Path(exists=True), help="Bundle folder.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), help="Ship this precision instead of the "
              "profile's.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads in run.sh (default: the profile's).")
@click.option("--user", help="systemd User= (default: the profile's).")
@click.option("--install-dir", default="/opt/fer-edge", show_default=True, help="Where the folder will live.")
@click.option("--force", is_flag=True, help="Replace an earlier deployment in --out.")
@click.option("--wheels/--no-wheels", default=False, show_default=True,
              help="Download the pinned requirements and their dependencies as wheels for the device's platform "
              "and Python into wheels/, for an install with no network (uses pip's index: network, here).")
@click.option("--find-links", "find_links", multiple=True, type=click.Path(exists=True, file_okay=False),
              metavar="DIR", help="Local wheel folder searched first (repeatable); also for the fer-edge wheel.")
@click.option("--no-index", is_flag=True, help="With --wheels: take wheels only from --find-links (offline).")
@click.option("--serve", is_flag=True, help="run.sh (the service) runs `fer-edge serve`: dashboard, JSON, events, "
              "metrics, /healthz.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --serve: address to bind; any other than loopback needs a token (generated if not given).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="With --serve: port.")
@click.option("--token", default=None, metavar="T|auto",
              help="With --serve: the token (written to serve.token, mode 0600); 'auto' generates one.")
def deploy(device: str, bundle: str, out: str, precision: str | None, threads: int | None, user: str | None,
           install_dir: str, force: bool, wheels: bool, find_links: tuple[str, ...], no_index: bool, serve: bool,
           host: str, port: int, token: str | None) -> None:
    """A folder to copy onto DEVICE: the bundle cut to what it runs, pinned requirements, the fer-edge wheel
    (plus the requirements' wheels with --wheels), install.sh, run.sh, a systemd unit.

    \b
    fer-edge deploy --device rpi5 --bundle fer_edge/assets/default_bundle --out dist/rpi5 --wheels
    FER_EDGE_SOURCE=fer_edge/assets/sample/sample.mp4 bash dist/rpi5/run.sh --json -   # on the device
    """
    from fer_edge.devices.deploy import deploy as make
    from fer_edge.devices.deploy import serve_setup

    if not serve and (host != "127.0.0.1" or port != 8080 or token is not None):
        raise FerEdgeError("--host, --port and --token apply to --serve")
    setup = serve_setup(host, port, token) if serve else None
    d = make(device, bundle, out, precision=precision, threads=threads, user=user, install_dir=install_dir,
             force=force, wheels=wheels, find_links=find_links, no_index=no_index, serve=setup)
    arts = ", ".join(f"{a.format}/{a.precision} ({a.file})" for a in d.artifacts)
    click.echo(f"{d.path}: {d.profile.title} runs {arts}")
    for f in d.files:
        click.echo(f"  {f}")
    for n in d.notes:
        click.echo(f"note: {n}")
    click.echo(f"next: copy {d.path} to the device, then ./install.sh and ./run.sh (see README.md)")
