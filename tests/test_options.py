"""One options object per command with the defaults in one place and units in the names: ``RunOptions`` (the
defaults of ``fer-edge run``, ``serve``'s shared options and ``run()``), ``BenchOptions``, ``ConvertOptions``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers.runtime import sample_clip

from fer_edge.runtime.cli import run as run_command
from fer_edge.runtime.options import DEFAULTS, FIELDS, RunOptions
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.run import run
from fer_edge.runtime.serve.cli import serve as serve_command


def test_the_run_command_defaults_are_run_options_defaults() -> None:
    params = {p.name: p for p in run_command.params}
    assert set(params) - {"camera", "source", "size"} <= set(FIELDS)
    parsed = run_command.make_context("run", []).params  # defaults as click resolves them (flags: UNSET in 8.5)
    for name in params:
        if name in FIELDS:
            assert parsed[name] == getattr(DEFAULTS, name), name
    assert (DEFAULTS.min_face, DEFAULTS.max_faces) == (24, 8)


def test_serve_shares_the_face_and_reading_defaults() -> None:
    parsed = serve_command.make_context("serve", []).params
    for name in ("smooth", "every", "min_face", "max_faces", "latest", "overlap", "backend", "detector"):
        assert parsed[name] == getattr(DEFAULTS, name), name


def test_replace_refuses_unknown_names_and_options_are_frozen() -> None:
    with pytest.raises(TypeError, match="min_fce"):
        DEFAULTS.replace(min_fce=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.min_face = 3  # type: ignore[misc]
    assert DEFAULTS.replace(max_faces=2) == RunOptions(max_faces=2)


def test_run_refuses_an_unknown_keyword(dev_bundle: Path) -> None:
    with pytest.raises(TypeError, match="unknown run option"):
        run(str(sample_clip()), bundle=dev_bundle, max_frame=1)


def test_run_without_options_detects_as_the_command_does(dev_bundle: Path) -> None:
    pipe = Pipeline.from_bundle(dev_bundle, **DEFAULTS.pipeline_kwargs())
    assert (pipe.detector.min_face, pipe.detector.max_faces) == (24, 8)
    by_keywords = run(str(sample_clip()), bundle=dev_bundle, max_frames=3)
    by_options = run(str(sample_clip()), options=RunOptions(bundle=dev_bundle, max_frames=3))
    assert (by_keywords.frames, by_keywords.faces) == (by_options.frames, by_options.faces)
    assert by_keywords.frames == 3 and by_keywords.detector == pipe.detector.name


def test_max_drop_is_in_points_in_bench_and_convert_and_the_old_spellings_still_work() -> None:
    from fer_edge.benchmarks.runner import BenchOptions
    from fer_edge.convert import ConvertOptions

    assert BenchOptions().max_drop_points == 2.0 and ConvertOptions().max_drop_points is None
    assert BenchOptions(max_drop_points=3.0).max_drop_points == 3.0
    assert BenchOptions(max_drop=0.05).max_drop_points == pytest.approx(5.0)  # the old spelling was a fraction
    assert ConvertOptions(max_drop=0.5).max_drop_points == 0.5                # ... and points here
    kept = dataclasses.replace(BenchOptions(max_drop=0.05), runs=3)
    assert kept.max_drop_points == pytest.approx(5.0)
    assert dataclasses.asdict(ConvertOptions(max_drop_points=1.0))["max_drop_points"] == 1.0
