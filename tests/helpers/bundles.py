"""The tests' one tiny-bundle builder: a small Keras CNN (48x48 gray float [0, 1] in, 8-class softmax out), trained
for a moment on FERPlus faces when asked (``helpers.datasets.make_bar_ferplus`` faces when the data is absent),
converted by the real converter (``fer_edge.convert.convert``: manifest, sha256s, quantization, evaluation) into a
bundle folder.

conftest.py builds each kind once per session in a subprocess (``python tests/helpers/bundles.py OUT KIND``), so
the test process never imports TensorFlow for it:

- ``runtime``: TFLite fp32 + int8 of an untrained CNN (the runtime tests' ``dev_bundle``);
- ``bench``: TFLite, ONNX and OpenVINO, fp32 + int8, briefly trained (the benchmark and deploy tests' ``bench_bundle``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from fer_edge.labels import EMOTIONS

KINDS = {  # kind -> (formats, train faces)
    "runtime": (("tflite",), 0),
    "bench": (("tflite", "onnx", "openvino"), 2000),
}
FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


def real_ferplus() -> Path | None:
    """The real FERPlus folder ($FER_EDGE_DATA/ferplus or ../shared/data/ferplus), or None."""
    repo = Path(__file__).resolve().parents[2]
    root = Path(os.environ.get("FER_EDGE_DATA", repo.parent / "shared" / "data")) / "ferplus"
    return root if (root / "FER2013Test" / "label.csv").is_file() else None


def ferplus_subset(root: Path, dest: Path, per_split: int = 240, splits: tuple[str, ...] = ("test",)) -> Path:
    """A FERPlus-layout folder holding the first ``per_split`` labelled faces of each of ``splits`` of the FERPlus
    folder ``root`` (images symlinked)."""
    from fer_edge.data.ferplus import majority, read_label_csv

    for split in splits:
        src, out = root / FOLDERS[split], dest / FOLDERS[split]
        out.mkdir(parents=True, exist_ok=True)
        names, votes = read_label_csv(src / "label.csv")
        keep = np.flatnonzero(majority(votes) >= 0)[:per_split]
        by_name = {ln.split(",", 1)[0].strip(): ln for ln in (src / "label.csv").read_text().splitlines() if ln.strip()}
        for i in keep:
            os.symlink(src / names[i], out / names[i])
        (out / "label.csv").write_text("\n".join(by_name[names[i]] for i in keep) + "\n")
    return dest


def ferplus_faces(root: Path | None, split: str, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 48, 48, 1) uint8 faces and canonical labels from one FERPlus folder; random faces without data."""
    if root is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (limit, 48, 48, 1), dtype=np.uint8), rng.integers(0, 8, limit)
    import cv2

    from fer_edge.data.ferplus import majority, read_label_csv

    folder = root / FOLDERS[split]
    names, votes = read_label_csv(folder / "label.csv")
    labels = majority(votes)
    keep = np.flatnonzero(labels >= 0)[:limit]
    faces = [cv2.imread(str(folder / names[i]), cv2.IMREAD_GRAYSCALE) for i in keep]
    return np.stack([cv2.resize(f, (48, 48)) for f in faces])[..., None], labels[keep]


def ferplus_or_none(request: object) -> Path | None:
    """The real FERPlus folder from the ``ferplus_dir`` fixture, or None where it is absent (synthetic fallback)."""
    import pytest

    try:
        return request.getfixturevalue("ferplus_dir")
    except pytest.skip.Exception:
        return None


def faces_folder(dest: Path, per_split: int = 240, train: int = 0) -> Path:
    """Faces for calibration, evaluation and the brief training: a real FERPlus subset, else synthetic faces."""
    root = real_ferplus()
    if root is None:
        from helpers.datasets import make_bar_ferplus

        return make_bar_ferplus(dest, (max(train, per_split), per_split, per_split))
    ferplus_subset(root, dest, per_split, ("val", "test"))
    if train:
        ferplus_subset(root, dest, train, ("train",))
    return dest


def _model(seed: int):  # keras imported lazily
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((48, 48, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(4), layers.Flatten(),
        layers.Dense(len(EMOTIONS), activation="softmax"),
    ], name="tiny")


def build_tiny_bundle(dest: Path, kind: str = "runtime", seed: int = 0) -> Path:
    """Build a ``kind`` bundle (see KINDS) into the bundle folder ``dest`` with ``fer_edge.convert.convert``."""
    from fer_edge.convert import ConvertOptions, convert
    from fer_edge.data import load_dataset

    formats, train_faces = KINDS[kind]
    with tempfile.TemporaryDirectory(prefix="fer-edge-tiny-") as tmp:
        faces = faces_folder(Path(tmp) / "faces", train=train_faces)
        model = _model(seed)
        if train_faces:
            ds = load_dataset(faces).only_split("train").labelled()
            x = ds.images[..., :1].astype(np.float32) / 255.0
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(x, ds.labels, batch_size=64, epochs=3, verbose=0)
        source = Path(tmp) / "tiny.keras"
        model.save(source)
        opts = ConvertOptions(formats=formats, precisions=("int8",), classes=EMOTIONS, eval=str(faces),
                              calib=str(faces), eval_size=200, calib_size=100, name=f"tiny-{kind}", seed=seed)
        convert(source, dest, opts)
    return dest


if __name__ == "__main__":  # python tests/helpers/bundles.py OUT [runtime|bench]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for helpers.datasets
    print(build_tiny_bundle(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "runtime"))
