"""``fer-edge serve``: parse, call ``serve``, print."""

from __future__ import annotations

import logging
import sys

import click

from fer_edge.errors import FerEdgeError
from fer_edge.extras import MissingExtra, install_line
from fer_edge.runtime.cli_options import capture_options, model_options, pipeline_options


@click.command()
@click.option("--camera", "cameras", type=int, multiple=True, metavar="N", help="Camera index (repeatable).")
@click.option("--source", "sources", multiple=True, metavar="[NAME=]FILE|DIR|URL",
              help="Video, image folder or rtsp:// / http:// stream (repeatable); NAME= sets the camera's id.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; any non-loopback address needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 = any free port.")
@click.option("--token", default=None, envvar="FER_EDGE_SERVE_TOKEN", metavar="T|auto",
              help="Required on every endpoint but /healthz (Bearer header or ?token=); 'auto' generates one. "
                   "Env: FER_EDGE_SERVE_TOKEN.")
@click.option("--stream/--no-stream", default=False, show_default=True,
              help="Serve the annotated images (MJPEG, snapshots); off: no image leaves the device.")
@click.option("--redact", is_flag=True, help="Blur faces in the served images.")
@click.option("--stream-fps", type=click.FloatRange(0.1, 60), default=10.0, show_default=True,
              help="At most this many images per second per camera to viewers.")
@click.option("--pace/--no-pace", default=True, show_default=True,
              help="Play files and folders at their frame rate (like a camera), or as fast as possible.")
@click.option("--loop/--no-loop", default=True, show_default=True, help="Play files again when they end.")
@click.option("--mqtt", default=None, metavar="mqtt[s]://[user:pass@]host[:port]/prefix",
              help="Publish label changes and summaries to an MQTT broker (Home Assistant discovery included). "
                   "Password also from FER_EDGE_MQTT_PASSWORD.")
@click.option("--mqtt-ca", default=None, metavar="FILE", help="CA certificate for mqtts:// (default: system CAs).")
@click.option("--mqtt-interval", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
              help="Seconds between per-camera summaries.")
@click.option("--mqtt-discovery/--no-mqtt-discovery", default=True, show_default=True,
              help="Publish Home Assistant MQTT discovery configs.")
@model_options
@pipeline_options
@click.option("--stale", "stale_s", type=click.FloatRange(0.5), default=10.0, show_default=True, metavar="S",
              help="/healthz: a camera without a frame for S seconds is down.")
@click.option("-v", "--verbose", is_flag=True, help="Log every camera event (failures are always logged).")
def serve(cameras: tuple[int, ...], sources: tuple[str, ...], host: str, port: int, token: str | None, stream: bool,
          redact: bool, stream_fps: float, pace: bool, loop: bool, mqtt: str | None, mqtt_ca: str | None,
          mqtt_interval: float, mqtt_discovery: bool, bundle: str | None, backend: str, threads: int | None,
          precision: str | None, detector: str, detector_model: str | None, smooth: float, every: int,
          min_face: int, max_faces: int, size: tuple[int, int] | None, latest: bool, overlap: bool, flip_tta: bool,
          align: bool | None, stale_s: float, verbose: bool) -> int:
    """Serve one or more cameras: dashboard, JSON, events, metrics and MQTT, on a headless device.

    \b
    fer-edge serve --camera 0 --stream                       # http://127.0.0.1:8080/
    fer-edge serve --source hall=rtsp://user:pass@cam1/s --source kitchen=rtsp://cam2/s \\
                   --host 0.0.0.0 --token auto --mqtt mqtt://broker/fer-edge
    """
    try:
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(f"fer-edge serve needs the serve extra ({exc.name}): {install_line('serve')}") from None
    if mqtt:
        try:
            import paho.mqtt  # noqa: F401
        except ImportError:
            raise MissingExtra(f"--mqtt needs paho-mqtt, part of the serve extra: {install_line('serve')}") from None
    elif mqtt_ca:
        raise FerEdgeError("--mqtt-ca needs --mqtt")
    if redact and not stream:
        raise FerEdgeError("--redact blurs the served images: add --stream (or drop --redact)")
    from fer_edge.runtime.pipeline import Pipeline
    from fer_edge.runtime.serve.options import ServeOptions, bind_address, parse_cameras
    from fer_edge.runtime.serve.server import serve as serve_

    source_options = capture_options(size, cameras=bool(cameras))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    options = ServeOptions(cameras=parse_cameras(cameras, sources), host=bind_address(host), port=port, token=token,
                           stream=stream, redact=redact, stream_fps=stream_fps, stale_s=stale_s, pace=pace, loop=loop,
                           latest=latest, overlap=overlap, source_options=source_options, mqtt=mqtt,
                           mqtt_options={"ca": mqtt_ca, "interval": mqtt_interval, "discovery": mqtt_discovery})

    def make_pipeline() -> Pipeline:
        return Pipeline.from_bundle(bundle, backend=backend, threads=threads, precision=precision, detector=detector,
                                    detector_model=detector_model, min_face=min_face, max_faces=max_faces,
                                    every=every, smooth=smooth, flip_tta=flip_tta, align=align)

    def echo(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()

    return serve_(options, make_pipeline, echo=echo)
