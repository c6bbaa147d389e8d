"""Plug-ins declare what they take: detectors and the bench worker refuse unknown options, conversion toolchains
are registered ``Toolchain`` entries, and ``open_interpreter`` is the one way to open a TFLite model."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fer_edge.benchmarks import worker
from fer_edge.convert.formats import FORMATS
from fer_edge.convert.toolchain import TOOLCHAINS, Toolchain
from fer_edge.errors import FerEdgeError, ModelError
from fer_edge.runtime.backends.litert import open_interpreter
from fer_edge.runtime.detectors import DETECTORS, DetectorBase, get_detector


@pytest.mark.parametrize("name", DETECTORS.names())
def test_each_detector_declares_exactly_what_its_constructor_takes(name: str) -> None:
    cls = DETECTORS.get(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert sorted(cls.options) == sorted(params)


def test_an_unknown_detector_option_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(FerEdgeError, match=r"haar has no option min_neighbours \(it takes .*min_neighbors"):
        get_detector("haar", min_neighbours=3)


def test_threads_go_only_to_a_detector_that_runs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoModel(DetectorBase):
        name = "nomodel"

    monkeypatch.setitem(DETECTORS._entries, "nomodel", NoModel)
    assert get_detector("nomodel", threads=2, min_face=30, max_faces=None).min_face == 30  # no threads: not an error
    with pytest.raises(FerEdgeError, match="nomodel has no option model_path"):
        get_detector("nomodel", model_path="x")
    if DETECTORS.get("blazeface").is_available():
        assert get_detector("blazeface", threads=2).interp is not None


def test_the_bench_worker_refuses_an_unknown_pipeline_option() -> None:
    out = worker.pipeline({"source": "x.mp4", "bundle": "b", "kwargs": {"threads": 1, "max_frame": 3}})
    assert out["ok"] is False and out["stage"] == "options"
    assert "unknown pipeline option(s) max_frame" in out["error"]


def test_every_format_names_a_registered_toolchain() -> None:
    import fer_edge.convert.bundler  # noqa: F401  (registers the toolchains)

    for _, entry in FORMATS.items():
        assert isinstance(TOOLCHAINS.get(entry.toolchain), Toolchain), entry.key
    assert set(TOOLCHAINS.names()) == {"tflite", "onnx", "openvino"}
    with pytest.raises(FerEdgeError, match="tflite"):
        TOOLCHAINS.get("tflte")


def test_open_interpreter_opens_a_model_and_refuses_a_non_model(dev_bundle: Path, tmp_path: Path) -> None:
    interp = open_interpreter(dev_bundle / "model_fp32.tflite", threads=1)
    interp.allocate_tensors()
    assert list(interp.get_input_details()[0]["shape"]) == [1, 48, 48, 1]
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a valid TFLite model"):
        open_interpreter(tmp_path / "junk.tflite")


def test_a_registry_entry_names_itself_once() -> None:
    """A registered class takes its name from the registration; a class that spells another one is refused."""
    import fer_edge.data  # noqa: F401  (registers the readers)
    from fer_edge.data.registry import DATASETS
    from fer_edge.registry import Registry
    from fer_edge.runtime.backends.base import BACKENDS

    for reg in (DATASETS, BACKENDS, DETECTORS):
        for key, entry in reg.items():
            assert entry.name == key, (reg.kind, key)
    reg = Registry("toy")

    @reg.register("good")
    class Good:
        pass

    assert Good.name == "good" and reg.get("good") is Good
    with pytest.raises(ValueError, match="says its name is 'other'"):
        @reg.register("wrong")
        class Wrong:
            name = "other"
