"""A tiny real bundle for the benchmark and device tests: a small Keras CNN (48x48x1 float [0, 1] -> 8-class
softmax) trained for a moment on real FERPlus faces (random faces when the data is absent), exported to TFLite
fp32 and full-int8, ONNX and OpenVINO IR, with a manifest made by ``fer_edge.bundle.Manifest``.

Only the test process imports TensorFlow; the benchmarks it feeds run in TensorFlow-free subprocesses.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bundle import MANIFEST, Artifact, InputSpec, Manifest, load_bundle, sha256_file
from fer_edge.labels import EMOTIONS

VERSION = 1  # bump when the builder's output changes (cached bundles are keyed on it)
SPEC = InputSpec(height=48, width=48, channels=1, color="gray")


def ferplus_faces(root: Path | None, split: str, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 48, 48, 1) uint8 faces and canonical labels from one FERPlus folder; random faces without data."""
    if root is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (limit, 48, 48, 1), dtype=np.uint8), rng.integers(0, 8, limit)
    from fer_edge.data.ferplus import majority, read_label_csv

    folder = root / {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}[split]
    names, votes = read_label_csv(folder / "label.csv")
    labels = majority(votes)
    keep = np.flatnonzero(labels >= 0)[:limit]
    faces = [cv2.imread(str(folder / names[i]), cv2.IMREAD_GRAYSCALE) for i in keep]
    return np.stack([cv2.resize(f, (48, 48)) for f in faces])[..., None], labels[keep]


def ferplus_subset(root: Path, dest: Path, per_split: int = 240) -> Path:
    """A FERPlus-layout folder holding the first ``per_split`` labelled test faces (symlinked images)."""
    from fer_edge.data.ferplus import majority, read_label_csv

    src = root / "FER2013Test"
    out = dest / "FER2013Test"
    out.mkdir(parents=True, exist_ok=True)
    names, votes = read_label_csv(src / "label.csv")
    keep = np.flatnonzero(majority(votes) >= 0)[:per_split]
    lines = (src / "label.csv").read_text().splitlines()
    by_name = {ln.split(",", 1)[0].strip(): ln for ln in lines if ln.strip()}
    rows = []
    for i in keep:
        name = names[i]
        os.symlink(src / name, out / name)
        rows.append(by_name[name])
    (out / "label.csv").write_text("\n".join(rows) + "\n")
    return dest


def _keras_model(seed: int):  # keras imported lazily
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((48, 48, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(4), layers.Flatten(),
        layers.Dense(len(EMOTIONS), activation="softmax"),
    ])


def _tflite(model, calib: np.ndarray | None) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def _quant(path: Path) -> tuple[dict | None, dict | None]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    out = []
    for d in (it.get_input_details()[0], it.get_output_details()[0]):
        scale, zp = d["quantization"]
        out.append({"scale": float(scale), "zero_point": int(zp)} if scale else None)
    return out[0], out[1]


def _onnx_int8(src: Path, dst: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            import onnxruntime as ort

            name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
            self.it = iter({name: calib[i : i + 1]} for i in range(len(calib)))

        def get_next(self) -> dict | None:
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def _openvino_int8(src: Path, dst: Path, calib: np.ndarray) -> None:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(src))
    q = nncf.quantize(model, nncf.Dataset([calib[i : i + 1] for i in range(len(calib))]),
                      subset_size=len(calib))
    ov.save_model(q, str(dst), compress_to_fp16=False)


def build_tiny_bundle(dest: Path, ferplus: Path | None, epochs: int = 5, train_faces: int = 5000,
                      full: bool = False, seed: int = 0) -> Path:
    """Train and export the tiny CNN into bundle folder ``dest``; ``full`` adds ONNX and OpenVINO int8."""
    import openvino as ov

    faces, labels = ferplus_faces(ferplus, "train", train_faces, seed)
    x = faces.astype(np.float32) / 255.0
    model = _keras_model(seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, batch_size=64, epochs=epochs, verbose=0)
    calib = x[:200]

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model_fp32.tflite").write_bytes(_tflite(model, None))
    (dest / "model_int8.tflite").write_bytes(_tflite(model, calib))
    model.export(str(dest / "model_fp32.onnx"), format="onnx", verbose=False)
    ov.save_model(ov.convert_model(str(dest / "model_fp32.onnx")), str(dest / "model_fp32.xml"), compress_to_fp16=False)
    files = [("tflite", "fp32", "model_fp32.tflite"), ("tflite", "int8", "model_int8.tflite"),
             ("onnx", "fp32", "model_fp32.onnx"), ("openvino", "fp32", "model_fp32.xml")]
    if full:
        _onnx_int8(dest / "model_fp32.onnx", dest / "model_int8.onnx", calib)
        _openvino_int8(dest / "model_fp32.xml", dest / "model_int8.xml", calib)
        files += [("onnx", "int8", "model_int8.onnx"), ("openvino", "int8", "model_int8.xml")]

    arts = []
    for fmt, prec, name in files:
        p = dest / name
        qin = qout = None
        if fmt == "tflite" and prec == "int8":
            qin, qout = _quant(p)
        dtype = "int8" if qin else "float32"
        bins = [p.with_suffix(".bin")] if fmt == "openvino" else []
        comp = tuple({"file": b.name, "sha256": sha256_file(b), "bytes": b.stat().st_size} for b in bins)
        arts.append(Artifact(format=fmt, precision=prec, file=name, sha256=sha256_file(p), bytes=p.stat().st_size,
                             input_dtype=dtype, output_dtype=dtype, input_quant=qin, output_quant=qout,
                             companions=comp))
    manifest = Manifest(name="tiny-cnn", backbone="tiny", classes=EMOTIONS, input=SPEC, artifacts=tuple(arts),
                        parameters=int(model.count_params()),
                        provenance={"built_by": "tests/perf/tiny_bundle.py", "real_data": ferplus is not None})
    import json

    (dest / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2))
    return dest


def cached_tiny_bundle(cache_dir: Path, ferplus: Path | None, full: bool = False) -> Path:
    """The tiny bundle from ``cache_dir`` when intact there, else built afresh into it."""
    kind = ("real" if ferplus else "synthetic") + ("-full" if full else "")
    dest = cache_dir / f"tiny-v{VERSION}-{kind}"
    try:
        bundle = load_bundle(dest)
        for art in bundle.manifest.artifacts:
            bundle.verify(art)
        return dest
    except Exception:  # anything wrong with the cache: rebuild
        shutil.rmtree(dest, ignore_errors=True)
    tmp = dest.with_name(dest.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_bundle(tmp, ferplus, full=full)
    os.replace(tmp, dest)
    return dest


def ferplus_or_none(request: pytest.FixtureRequest) -> Path | None:
    """The real FERPlus folder from the ``ferplus_dir`` fixture, or None where it is absent (synthetic fallback)."""
    try:
        return request.getfixturevalue("ferplus_dir")
    except pytest.skip.Exception:
        return None


def session_bundle(request: pytest.FixtureRequest, full: bool = False) -> Path:
    """The tiny bundle, built once and kept in pytest's cache folder between sessions."""
    return cached_tiny_bundle(request.config.cache.mkdir("fer-edge-tiny-bundle"), ferplus_or_none(request), full)
