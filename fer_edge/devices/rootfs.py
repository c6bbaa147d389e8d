"""A Raspberry Pi OS-like root filesystem on this machine: Debian bookworm arm64 from Debian's packages
(``debootstrap``), run under qemu-user through binfmt_misc, entered with ``chroot`` inside private mount, PID and
network namespaces (``unshare``): a /proc of its own (the guest's processes only) is mounted and /dev bind-mounted
there, both gone with the process, /sys is left out (cpuinfo probing under qemu-user segfaults with it), and the
guest has no network at all.

Host needs: Linux, root, util-linux (unshare, mount), coreutils chroot, and for an x86 host the Debian packages
``qemu-user-static binfmt-support`` (plus ``debootstrap`` to build the rootfs once).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_edge.atomic import atomic_dir, write_json
from fer_edge.errors import FerEdgeError

DEFAULT_ROOTFS = "/var/cache/fer-edge/pi-rootfs"
SUITE, DEB_ARCH, MACHINE = "bookworm", "arm64", "aarch64"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
MARKER = ".fer-edge-rootfs.json"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU_ENTRY = BINFMT / "qemu-aarch64"
APT_HINT = "apt-get install -y qemu-user-static debootstrap binfmt-support"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EmulationError(FerEdgeError):
    """The emulated device cannot be built, entered, or did not behave."""


def default_rootfs() -> Path:
    """$FER_EDGE_PI_ROOTFS, else /var/cache/fer-edge/pi-rootfs."""
    return Path(os.environ.get("FER_EDGE_PI_ROOTFS") or DEFAULT_ROOTFS)


def native() -> bool:
    """True when this machine runs aarch64 binaries itself (an Arm host needs no qemu)."""
    return platform.machine().lower() in ("aarch64", "arm64")


def binfmt_entry() -> dict[str, str]:
    """The qemu-aarch64 binfmt_misc registration: enabled, interpreter, flags ({} when absent)."""
    try:
        lines = QEMU_ENTRY.read_text().splitlines()
    except OSError:
        return {}
    out = {"enabled": lines[0].strip() if lines else ""}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        if key in ("interpreter", "flags:"):
            out[key.rstrip(":")] = value.strip()
    return out


def host_problem() -> str | None:
    """Why this machine cannot run the emulated device now, or None. Read-only: changes nothing."""
    if sys.platform != "linux":
        return f"needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "needs root (chroot, mount and unshare namespaces)"
    missing = [t for t in ("unshare", "chroot", "mount") if shutil.which(t) is None]
    if missing:
        return f"missing host tools: {', '.join(missing)} (util-linux, coreutils)"
    if native():
        return None
    entry = binfmt_entry()
    if not (BINFMT / "register").exists() and shutil.which("update-binfmts") is None:
        return f"binfmt_misc is not mounted and binfmt-support is not installed ({APT_HINT})"
    if not entry and not Path("/usr/share/binfmts/qemu-aarch64").is_file():
        return f"qemu-aarch64 is not registered with binfmt_misc and qemu-user-static is not installed ({APT_HINT})"
    if entry and "F" not in entry.get("flags", ""):
        return ("qemu-aarch64 is registered without the F (fix-binary) flag, so it cannot run inside a chroot; "
                "install Debian's qemu-user-static, which registers it with F")
    return None


def enable_binfmt(echo: Callable[[str], None] = print) -> str:
    """Make sure aarch64 binaries run here: mount binfmt_misc and enable qemu-aarch64 if needed.
    Returns a description of the emulator ("qemu-aarch64 7.2.22 (binfmt_misc, flags PF)", or "native")."""
    problem = host_problem()
    if problem:
        raise EmulationError(f"cannot emulate a Raspberry Pi here: {problem}")
    if native():
        return "native aarch64 (no emulation)"
    if not (BINFMT / "register").exists():
        echo(f"mounting binfmt_misc at {BINFMT}")
        _check(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], "mount binfmt_misc")
    if binfmt_entry().get("enabled") != "enabled":
        echo("enabling qemu-aarch64 in binfmt_misc (update-binfmts --enable qemu-aarch64)")
        _check(["update-binfmts", "--enable", "qemu-aarch64"], "update-binfmts --enable qemu-aarch64")
    entry = binfmt_entry()
    if entry.get("enabled") != "enabled" or "F" not in entry.get("flags", ""):
        raise EmulationError(f"qemu-aarch64 is not usable in binfmt_misc ({entry or 'not registered'}); {APT_HINT}")
    return f"{qemu_version()} (binfmt_misc, flags {entry.get('flags', '')})"


def qemu_version() -> str:
    """'qemu-aarch64 version 7.2.22 (Debian ...)' of the host's static emulator, or 'qemu-aarch64'."""
    exe = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if exe is None:
        return "qemu-aarch64"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out.strip() else "qemu-aarch64"


def host_mirror() -> str:
    """The Debian mirror this machine's apt uses when it is Debian, else deb.debian.org."""
    if "ID=debian" not in _read("/etc/os-release"):
        return DEBIAN_MIRROR
    for line in _read("/etc/apt/sources.list.d/debian.sources").splitlines():
        if line.startswith("URIs:") and line.split()[1:]:
            return line.split()[1]
    for line in _read("/etc/apt/sources.list").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
            return parts[2] if parts[1].startswith("[") else parts[1]
    return DEBIAN_MIRROR


def rootfs_info(root: Path) -> dict[str, Any] | None:
    """The marker of a finished rootfs built by ``ensure_rootfs``, or None (absent, unfinished, other suite)."""
    try:
        info = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    ok = (isinstance(info, dict) and info.get("suite") == SUITE and info.get("arch") == DEB_ARCH
          and set(PACKAGES) <= set(info.get("packages", ())) and (root / "usr/bin/python3").exists())
    return info if ok else None


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_rootfs(root: str | Path | None = None, mirror: str | None = None, timeout_s: float = 1800,
                  echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Reuse the bookworm arm64 rootfs at ``root`` or build it with debootstrap (~6 min, ~410 MB), whole or
    not at all. Returns its marker plus ``reused`` and ``path``."""
    root = Path(root) if root is not None else default_rootfs()
    with _locked(root):
        info = rootfs_info(root)
        if info is not None:
            return {**info, "path": str(root), "reused": True}
        if root.exists() and any(root.iterdir()):
            raise EmulationError(f"{root} exists but is no finished fer-edge rootfs (no {MARKER}); "
                                 "remove it or pass another --rootfs")
        if shutil.which("debootstrap") is None:
            raise EmulationError(f"no rootfs at {root} and debootstrap is not installed ({APT_HINT})")
        mirror = mirror or host_mirror()
        echo(f"building Debian {SUITE} {DEB_ARCH} at {root} from {mirror} (debootstrap, about 6 minutes)")
        t0 = datetime.now(timezone.utc)
        with atomic_dir(root) as tmp:
            # in a private mount namespace: what debootstrap mounts in the target (proc, sys) dies with it
            cmd = ["unshare", "--mount", "--propagation", "private", "--", "debootstrap", f"--arch={DEB_ARCH}",
                   f"--include={','.join(PACKAGES)}", SUITE, str(tmp), mirror]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise EmulationError(f"debootstrap did not finish in {timeout_s:.0f} s") from None
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                raise EmulationError(f"debootstrap failed (exit {proc.returncode}): {' | '.join(tail)}")
            info = {"suite": SUITE, "arch": DEB_ARCH, "packages": list(PACKAGES), "mirror": mirror,
                    "built": t0.isoformat(timespec="seconds"),
                    "build_s": round((datetime.now(timezone.utc) - t0).total_seconds(), 1)}
            write_json(tmp / MARKER, info)
        return {**info, "path": str(root), "reused": False}


def chroot_command(root: Path, argv: Sequence[str], env: Mapping[str, str] | None = None,
                   cwd: str = "/") -> list[str]:
    """The host command that runs ``argv`` in ``root``: private mount and PID namespaces, with a /proc of its own
    (the guest sees only its own processes, never the host's) and /dev bound, all gone when the process ends;
    a fresh network namespace (no network); a clean environment (``env`` plus PATH, HOME=/root, LANG)."""
    r = shlex.quote(str(root))
    guest_env = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
    script = (f"set -e; mount -t proc -o nosuid,nodev,noexec proc {r}/proc; mount --rbind /dev {r}/dev; "
              f'exec chroot {r} /usr/bin/env -i -C {shlex.quote(cwd)} "$@"')
    return ["unshare", "--mount", "--net", "--pid", "--fork", "--propagation", "private", "--", "/bin/sh", "-c",
            script, "fer-edge-chroot", *(f"{k}={v}" for k, v in guest_env.items()), *argv]


def _check(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EmulationError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
