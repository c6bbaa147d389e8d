"""The systemd unit of a deployment, and the checks that keep its user name and install folder safe in it.

Unit-file values go through systemd's own rules: ``%`` starts a specifier (written ``%%``), ``$`` expands a
variable on command lines (written ``$$``), and a command-line word with spaces is double-quoted. Newlines, quotes,
backslashes and control characters have no safe spelling across all the settings used, so they are refused."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from fer_edge.errors import FerEdgeError

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"'\\`]")

WATCHDOG_S = 30
STOP_TIMEOUT_S = 30
START_TIMEOUT_S = 180


def check_user(user: str) -> str:
    """A systemd ``User=``: a name (letters, digits, '_', '-'; not starting with a digit or '-'; <= 31) or a UID."""
    if (user.isdigit() and int(user) < 2**31 - 1) or _USER.fullmatch(user):
        return user
    raise FerEdgeError(f"--user {user!r}: not a user name systemd accepts (letters, digits, '_' and '-', starting "
                       "with a letter or '_', at most 31 characters; or a numeric UID)")


def check_install_dir(path: str) -> str:
    """An absolute, normalized folder path with no newline, quote, backslash or control character."""
    bad = _UNSAFE.search(path)
    if bad:
        raise FerEdgeError(f"--install-dir {path!r}: contains {bad.group()!r}; newlines, quotes, backslashes, "
                           "backticks and control characters cannot be used in a systemd unit")
    p = PurePosixPath(path)
    if not p.is_absolute() or ".." in p.parts:
        raise FerEdgeError(f"--install-dir {path!r}: must be an absolute path without '..' (e.g. /opt/fer-edge)")
    return str(p)


def value(text: str) -> str:
    """A plain setting's value (WorkingDirectory=, EnvironmentFile=): specifiers escaped."""
    return text.replace("%", "%%")


def word(text: str, program: bool = False) -> str:
    """One command-line word (ExecStart=): specifiers escaped, and variables in an argument (systemd expands none
    in the program path, where '$$' would stay two characters); quoted when it has whitespace."""
    text = text.replace("%", "%%") if program else text.replace("%", "%%").replace("$", "$$")
    return f'"{text}"' if re.search(r"\s", text) or not text else text


def hardening(install_dir: str) -> list[str]:
    """Sandboxing that leaves the install folder, /var and /srv writable: no privilege gain, a private /tmp,
    /usr /boot /etc read-only, and home folders read-only unless the install folder is in one."""
    parts = PurePosixPath(install_dir).parts
    top = parts[1] if len(parts) > 1 else ""
    lines = ["NoNewPrivileges=yes"]
    if top != "tmp" and parts[1:3] != ("var", "tmp"):  # a private /tmp would hide an install folder in /tmp
        lines.append("PrivateTmp=yes")
    lines.append("ProtectSystem=full")
    if top in ("usr", "boot", "efi", "etc"):  # read-only under ProtectSystem=full: keep the install folder writable
        path = value(install_dir)
        lines.append(f'ReadWritePaths="{path}"' if re.search(r"\s", path) else f"ReadWritePaths={path}")
    if top not in ("home", "root") and parts[1:3] != ("run", "user"):
        lines.append("ProtectHome=read-only")
    return lines


def unit(title: str, install_dir: str, user: str, container: bool) -> str:
    """The unit text: restart with a limit, journal logging, SIGTERM with a stop timeout, ``hardening``; where run.sh
    execs fer-edge itself (no ``container``), readiness and a watchdog fed from the frame loop (Type=notify) whose
    failure stops it with SIGTERM too."""
    d = check_install_dir(install_dir)
    if container:  # the main process is the docker client: no notifications reach systemd from the container
        service, deps = ["Type=simple"], ["Requires=docker.service", "After=docker.service network-online.target"]
    else:
        # WatchdogSignal: systemd's default, SIGABRT, would kill the run with its outputs unfinished; SIGTERM
        # finalizes them, and the watchdog failure still counts (Restart=on-failure restarts it).
        service = ["Type=notify", "NotifyAccess=main", f"WatchdogSec={WATCHDOG_S}", "WatchdogSignal=SIGTERM",
                   f"TimeoutStartSec={START_TIMEOUT_S}"]
        deps = ["After=network-online.target local-fs.target"]
    return "\n".join([
        "[Unit]", f"Description=fer-edge facial expression recognition ({title})",
        "Wants=network-online.target", *deps,
        "StartLimitIntervalSec=300", "StartLimitBurst=5", "",
        "[Service]", *service, f"User={check_user(user)}", "SupplementaryGroups=video",
        f"WorkingDirectory={value(d)}", f"EnvironmentFile=-{value(d + '/fer-edge.env')}",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={word(d + '/run.sh', program=True)}",
        "Restart=on-failure", "RestartSec=5",
        "KillSignal=SIGTERM", f"TimeoutStopSec={STOP_TIMEOUT_S}",
        "StandardOutput=journal", "StandardError=journal", "SyslogIdentifier=fer-edge",
        *hardening(d), "",
        "[Install]", "WantedBy=multi-user.target",
    ]) + "\n"
