"""A run's outputs together: refused up front when one would overwrite the source, opened together, and isolated
from each other while the run goes on: the one that fails (disk full, I/O error, read-only) is dropped and
reported in one line at the end, the others are kept and finalized."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.output_errors import StdoutClosed
from fer_edge.runtime.outputs import VIDEO_SUFFIXES, JsonLinesSink, OutputError, open_sink, output_error
from fer_edge.runtime.types import FrameResult


class Outputs:
    """``saved`` (video, segments or image folder) and ``json`` sinks; ``write_*`` never raises for a sink's own
    failure, ``close`` finalizes the rest and ``error()`` is the one-line report of those that failed."""

    def __init__(self, save: str | Path | None = None, json_out: str | Path | None = None, fps: float = 30.0,
                 segment: float | None = None) -> None:
        self.sinks: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.kept: list[str] = []
        self.stdout_closed = False  # --json - lost its reader: stop, like a Unix tool piped into head
        try:
            if json_out is not None:
                durable = segment is not None and str(json_out) != "-"
                self.sinks["json"] = JsonLinesSink(json_out, append=durable, sync_every=segment)
            if save is not None:
                on_segment = self._sync_json if segment is not None else None
                sink = open_sink(save, fps, segment)
                if on_segment is not None and hasattr(sink, "on_segment"):
                    sink.on_segment = on_segment
                self.sinks["saved"] = sink
        except BaseException:
            self.close(ok=False)
            raise

    def __bool__(self) -> bool:
        return bool(self.sinks)

    @property
    def video(self) -> Any | None:
        return self.sinks.get("saved")

    def write_image(self, image: Any, name: str, t: float) -> None:
        self._call("saved", "write", image, name, t)

    def write_result(self, result: FrameResult, name: str) -> None:
        self._call("json", "write", result, name)

    def _call(self, key: str, method: str, *args: Any) -> None:
        sink = self.sinks.get(key)
        if sink is None:
            return
        try:
            getattr(sink, method)(*args)
        except StdoutClosed:  # not a failure: the run stops (see ``stdout_closed``)
            self.sinks.pop(key)
            self.stdout_closed = True
        except (OutputError, OSError) as exc:
            self._fail(key, exc)

    def _fail(self, key: str, exc: BaseException) -> None:
        sink = self.sinks.pop(key)
        self.failed[key] = str(output_error(getattr(sink, "label", key), exc))
        try:
            sink.close(ok=False)
        except (OutputError, OSError):
            pass

    def _sync_json(self, segment_path: Path) -> None:
        self._call("json", "sync")

    def close(self, ok: bool = True) -> dict[str, str]:
        """Finalize every sink still working (discard them unless ``ok``); {key: what it became}."""
        described = {}
        for key in sorted(self.sinks, key=lambda k: k != "saved"):  # the video first: its last segment syncs json
            sink = self.sinks[key]
            try:
                sink.close(ok=ok)
                described[key] = sink.describe()
            except (OutputError, OSError) as exc:
                self.sinks.pop(key)
                self.failed[key] = str(output_error(getattr(sink, "label", key), exc))
        self.sinks.clear()
        self.kept = list(described)
        described.update({k: f"FAILED: {why}" for k, why in self.failed.items()})
        return described

    def error(self) -> OutputError | None:
        """One line naming every output that failed (None when none did)."""
        if not self.failed:
            return None
        kept = " (the others were kept)" if self.kept else ""
        return OutputError(f"output failed{kept}: " + "; ".join(self.failed.values()))


def refuse_overlap(source: str, kind: str | None, save: str | Path | None, json_out: str | Path | None) -> None:
    """One FerEdgeError line when an output would overwrite the source or land inside a source folder, or when
    --save and --json name the same file. Cameras and URLs have nothing to overwrite."""
    outs = [(opt, Path(out)) for opt, out in (("--save", save), ("--json", json_out))
            if out is not None and str(out) != "-"]
    if len(outs) == 2 and _same(outs[0][1], outs[1][1]):
        raise FerEdgeError(f"--save and --json name the same file ({save}); give each its own")
    if kind == "camera" or "://" in source:
        return
    src = Path(source)
    if not src.exists():
        return
    for opt, out in outs:
        if _same(out, src):
            raise FerEdgeError(f"{opt} {out} is the source; write the output somewhere else")
        if src.is_dir() and _inside(out, src):
            raise FerEdgeError(f"{opt} {out} is inside the source folder {source}; write the output somewhere else")
        image_dir = opt == "--save" and out.suffix.lower() not in VIDEO_SUFFIXES
        if image_dir and src.is_file() and _same(out / src.name, src):
            raise FerEdgeError(f"--save {out} would overwrite the source {source} (same name in the same folder); "
                               "write the output somewhere else")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
