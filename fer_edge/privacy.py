"""No network unless asked: the inference libraries' telemetry is turned off before they load.

Measured with a fresh HOME (FACTS.md): importing openvino (and nncf) writes ``~/intel/openvino_ga_cid`` and
``~/intel/stats`` and looks up an analytics host; creating an onnxruntime session writes
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid`` and ``onnxruntime.db``. The opt-outs, as those
libraries implement them:

- openvino_telemetry (used by openvino's converter and by nncf) has no environment switch, and its consent file
  would itself be written under ~/intel; but both callers fall back to their own no-op stubs when the package cannot
  be imported, so it is made unimportable (``sys.modules[name] = None``, Python's documented way to block an import).
- onnxruntime's native 1DS telemetry reads ``ORT_DISABLE_TELEMETRY``; set, it writes no device id and sends nothing.
  (``onnxruntime.disable_telemetry_events()`` is the Windows ETW switch.)

``FER_EDGE_ALLOW_TELEMETRY=1`` leaves the libraries as they are. Called from ``fer_edge/__init__.py``, so every
entry point (the CLI, the benchmark workers, library use) runs it before anything imports those libraries.
"""

from __future__ import annotations

import os
import sys

ENV = {"ORT_DISABLE_TELEMETRY": "1"}
BLOCKED = ("openvino_telemetry",)


def disable_telemetry() -> list[str]:
    """Turn the telemetry off; return the blocked modules that were already imported (too late to block)."""
    if os.environ.get("FER_EDGE_ALLOW_TELEMETRY") == "1":
        return []
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    late = []
    for name in BLOCKED:
        if sys.modules.get(name) is not None:
            late.append(name)
        else:
            sys.modules[name] = None  # type: ignore[assignment]
    return late
