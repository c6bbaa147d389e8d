"""``fer-edge run`` and ``fer-edge demo``: parse, call one library function, print."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fer_edge.runtime.backends import BACKENDS
from fer_edge.runtime.cli_options import capture_options, model_options, pipeline_options
from fer_edge.runtime.detectors import DETECTORS
from fer_edge.runtime.options import DEFAULTS as D
from fer_edge.runtime.options import RunOptions
from fer_edge.runtime.outputs import VIDEO_SUFFIXES


@click.command()
@click.option("--camera", type=int, default=None, metavar="N", help="Camera index (/dev/videoN).")
@click.option("--source", default=None, metavar="FILE|DIR|URL",
              help="Video file, image, folder of images, or rtsp:// / http:// stream.")
@model_options
@pipeline_options
@click.option("--show", is_flag=True, help="Show the annotated frames in a window (needs a GUI OpenCV).")
@click.option("--save", default=None, metavar="OUT.mp4|DIR", help="Write the annotated video (or images to DIR).")
@click.option("--json", "json_out", default=None, metavar="FILE|-", help="JSON lines per frame to FILE or stdout.")
@click.option("--redact", is_flag=True, help="Blur faces in everything saved.")
@click.option("--max-frames", type=click.IntRange(1), default=None, metavar="N")
@click.option("--segment", type=click.FloatRange(min=1.0), default=None, metavar="SECONDS",
              help="Write the video in rolling files of SECONDS (OUT-00000.mp4, OUT-00001.mp4, ...; numbering goes "
                   "on after a restart) and append JSON lines in place, fsync'ed as often: a power cut loses at most "
                   "the open segment.")
@click.option("--open-timeout", type=click.FloatRange(min=0.0), default=D.open_timeout, show_default=True,
              metavar="SECONDS",
              help="Keep retrying the first open of a camera or stream this long, with backoff (a camera that comes "
                   "up late at boot); 0 = fail at once.")
def run(camera: int | None, source: str | None, size: tuple[int, int] | None, **settings: Any) -> int:
    """Recognize expressions live from a camera, a stream, a video, an image or a folder.

    SIGINT (Ctrl-C), SIGTERM and SIGHUP stop after the current frame: outputs finalized, summary printed, exit 0
    (130 after Ctrl-C). An output that fails (disk full, I/O error) is reported in one line, exit 1; the others
    are kept.

    \b
    fer-edge run --camera 0 --show
    fer-edge run --source clip.mp4 --save out.mp4 --json out.jsonl
    fer-edge run --source rtsp://cam/stream --json - --every 3
    fer-edge run --camera 0 --save /var/lib/fer-edge/cam.mp4 --json /var/lib/fer-edge/cam.jsonl --segment 300
    """
    from fer_edge.runtime.lifecycle import exit_code
    from fer_edge.runtime.run import run as run_

    if camera is None and source is None:
        raise click.UsageError("give --camera N or --source FILE|DIR|URL")
    if camera is not None and source is not None:
        raise click.UsageError("--camera and --source cannot be used together")
    opts = RunOptions(**settings)
    save, json_out = opts.save, opts.json_out
    if opts.redact and not save and not json_out:
        raise click.UsageError("--redact applies to saved outputs: add --save (or drop --redact)")
    video = save is not None and Path(save).suffix.lower() in VIDEO_SUFFIXES
    if opts.segment is not None and not video and json_out in (None, "-"):
        raise click.UsageError("--segment applies to a video --save OUT.mp4 or a --json FILE")
    options = capture_options(size, cameras=camera is not None)
    echo = _echo(json_out == "-")
    summary = run_(source, camera=camera, options=opts, echo=echo, source_options=options, notify=_echo(True))
    return exit_code(summary.stopped_by)


@click.command()
@click.option("--out", "out_dir", default="fer-edge-demo", show_default=True, metavar="DIR",
              help="Folder for the annotated video, JSON lines and summary.")
@click.option("--model", "bundle", default=None, metavar="BUNDLE", help="Bundle folder (default: the bundled model).")
@click.option("--backend", type=click.Choice(["auto", *BACKENDS.names()]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=None)
@click.option("--detector", type=click.Choice(["auto", "known", *DETECTORS.names()]), default="auto",
              show_default=True, help="'known' uses the sample's face boxes instead of a detector.")
def demo(out_dir: str, bundle: str | None, backend: str, threads: int | None, detector: str) -> int:
    """Run the bundled model on the bundled sample clip (no camera, no network, a few seconds)."""
    from fer_edge.runtime.demo import run_demo

    result = run_demo(out_dir, bundle=bundle, backend=backend, threads=threads, detector=detector, echo=_echo(False))
    return 130 if result.summary.stopped_by.startswith("interrupted") else 0


def _echo(to_stderr: bool) -> Callable[[str], None]:
    def echo(text: str) -> None:
        click.echo(text, err=to_stderr)

    return echo
