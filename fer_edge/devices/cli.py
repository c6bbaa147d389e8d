"""`fer-edge devices list|show`, `fer-edge doctor`, `fer-edge deploy`: parse, call the library, print."""

from __future__ import annotations

import json

import click

from fer_edge.bundle import PRECISIONS
from fer_edge.devices.profiles import PROFILES


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
def deploy(device: str, bundle: str, out: str, precision: str | None, threads: int | None, user: str | None,
           install_dir: str, force: bool) -> None:
    """A folder to copy onto DEVICE: the bundle cut to what it runs, pinned requirements, scripts, systemd unit.

    \b
    fer-edge deploy --device rpi5 --bundle runs/compact/bundle --out dist/rpi5
    """
    from fer_edge.devices.deploy import deploy as make

    d = make(device, bundle, out, precision=precision, threads=threads, user=user, install_dir=install_dir,
             force=force)
    arts = ", ".join(f"{a.format}/{a.precision} ({a.file})" for a in d.artifacts)
    click.echo(f"{d.path}: {d.profile.title} runs {arts}")
    for f in d.files:
        click.echo(f"  {f}")
    for n in d.notes:
        click.echo(f"note: {n}")
    click.echo(f"next: copy {d.path} to the device, then ./install.sh and ./run.sh (see README.md)")
