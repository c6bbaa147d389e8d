"""scripts/: every measurement script starts (--help), and the comparison with the `fer` package runs one real round
on the demo clip (the `fer` side stood in by a script printing its line, when the package is not installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
WITH_HELP = sorted(p for p in SCRIPTS.rglob("*.py") if p.name not in ("common.py", "fer_package.py"))


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), **kw.pop("env", {})}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=REPO, **kw)


def test_every_script_is_found() -> None:
    names = {p.relative_to(SCRIPTS).as_posix() for p in SCRIPTS.rglob("*") if p.is_file() and "__pycache__" not in
             p.parts}
    assert {"bench_serve.py", "photo_accuracy.py", "adversarial.sh", "compare/alternate.py", "compare/common.py",
            "compare/fer_edge_pipeline.py", "compare/fer_package.py"} <= names


@pytest.mark.parametrize("script", WITH_HELP, ids=lambda p: p.relative_to(SCRIPTS).as_posix())
def test_script_help(script: Path) -> None:
    res = _run([sys.executable, str(script), "--help"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage:"), res.stdout[:500]


def test_shell_script_parses() -> None:
    res = _run(["sh", "-n", str(SCRIPTS / "adversarial.sh")])
    assert res.returncode == 0, res.stderr


def test_fer_package_side_compiles(tmp_path) -> None:
    py_compile.compile(str(SCRIPTS / "compare" / "fer_package.py"), cfile=str(tmp_path / "f.pyc"), doraise=True)


def test_the_comparison_runs_one_round_on_the_clip(tmp_path) -> None:
    fer = tmp_path / "fer-python"
    if importlib.util.find_spec("fer") is not None:
        fer.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    else:  # the fer side's last line, as fer_package.py prints it
        fer.write_text("#!/bin/sh\necho 'fer: 30.0 FPS over 1 x 216 frames; found 400/573 face-frames (7 classes)'\n")
    fer.chmod(0o755)
    res = _run([sys.executable, str(SCRIPTS / "compare" / "alternate.py"), "--rounds", "1", "--fer-python", str(fer),
                "--edge-args=--no-overlap"], env={"FER_COMPARE_PASSES": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"round 1: fer ([\d.]+) FPS, fer-edge ([\d.]+) FPS, ratio ([\d.]+)", res.stdout)
    assert m and float(m.group(2)) > 0 and float(m.group(3)) == pytest.approx(float(m.group(2)) / float(m.group(1)),
                                                                               abs=0.01), res.stdout
    edge = re.search(r"fer-edge \(sequential, 2 thread\(s\) per stage.*found (\d+)/(\d+) face-frames.*"
                     r"accuracy on found ([\d.]+)%", res.stdout)
    assert edge, res.stdout
    found, total, acc = int(edge.group(1)), int(edge.group(2)), float(edge.group(3))
    assert total == 573 and 0 < found <= total and 0 < acc <= 100  # the clip's 573 labelled face-frames, scored


TINY_MODELS = """
import sys
import keras
for i, (path, size) in enumerate(zip(sys.argv[1:], (48, 32))):
    keras.utils.set_random_seed(i)
    keras.Sequential([keras.Input((size, size, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(8, activation="softmax")]).save(path)
"""


@pytest.mark.slow
def test_ensemble_accuracy_scores_members_and_ensembles(tmp_path) -> None:
    pytest.importorskip("keras", reason="the [train] extra builds the members")
    from helpers.datasets import make_bar_ferplus

    data = make_bar_ferplus(tmp_path / "ferplus", (8, 40, 24))
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"  # 48 px and 32 px: each member gets its own input size
    res = _run([sys.executable, "-c", TINY_MODELS, str(a), str(b)])
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "ens" / "ferplus.json"
    res = _run([sys.executable, str(SCRIPTS / "ensemble_accuracy.py"), f"a={a}", str(b), "--data", str(data),
                "--train-faces", "5", "--out", str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(out.read_text())
    assert d["faces"] == {"val": 40, "test": 24} and [m["name"] for m in d["members"]] == ["a", "b"]
    for m in d["members"]:  # a member alone, as a one-model ensemble, scores what its flip-averaged row says
        alone = next(e for e in d["best_by_val_accuracy"] if e["members"] == [m["name"]])
        assert alone["val"] == m["val"]["flip"] and alone["test"] == m["test"]["flip"]
        for split in ("val", "test"):
            s = m[split]["plain"]
            assert 0 <= s["accuracy"] <= 1 and set(s["recall"]) == set(d["classes"])  # every bar class has faces
            assert s["macro_recall"] == pytest.approx(sum(s["recall"].values()) / 8, abs=2e-3)
    assert [len(e["members"]) for e in d["greedy"]] == [1, 2] and d["all_members"]["members"] == ["a", "b"]
    assert d["greedy_chosen"] in d["greedy"] and len(d["best_by_val_accuracy"]) == 3  # every subset of 2 members
    assert res.stdout.startswith("| ensemble | Valid acc") and "| a + b |" in res.stdout
    teacher = d["teacher_on_train"]
    assert teacher["members"] == d["greedy_chosen"]["members"] and teacher["faces"] == 5
    assert 1 / 8 <= teacher["mean_top_probability"] <= 1 and 0 <= teacher["accuracy"] <= 1

    res = _run([sys.executable, str(SCRIPTS / "ensemble_accuracy.py"), str(tmp_path / "nope.keras"), "--data",
                str(data)])
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [f"error: nope: no such model file "
                                                                        f"{tmp_path / 'nope.keras'}"]

    # scripts/keras_test_accuracy.py scores each model on the same test faces as the ensemble script does
    res = _run([sys.executable, str(SCRIPTS / "keras_test_accuracy.py"), str(a), str(b), "--data", str(data)])
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert [(ln["model"], ln["tta"]) for ln in lines] == [(str(a), "plain"), (str(a), "flip"), (str(b), "plain"),
                                                          (str(b), "flip")]
    for ln, (m, tta) in zip(lines, [(m, t) for m in d["members"] for t in ("plain", "flip")], strict=True):
        assert ln["faces"] == 24 and ln["accuracy"] == pytest.approx(m["test"][tta]["accuracy"], abs=1e-4)
        assert ln["recall"] == m["test"][tta]["recall"]
    three = tmp_path / "three.keras"  # 3 outputs and no run.json: their classes cannot be told
    res = _run([sys.executable, "-c", "import sys, keras; keras.Sequential([keras.Input((48, 48, 1)), "
                "keras.layers.Flatten(), keras.layers.Dense(3, activation='softmax')]).save(sys.argv[1])", str(three)])
    assert res.returncode == 0, res.stderr[-2000:]
    res = _run([sys.executable, str(SCRIPTS / "keras_test_accuracy.py"), str(three), "--data", str(data)])
    last = res.stderr.strip().splitlines()[-1]  # (TensorFlow's start-up lines come before it)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert last.startswith(f"error: {three}: ") and "cannot tell the order of its 3 classes" in last


def test_no_script_mirrors_faces_by_hand() -> None:
    """Flip TTA has one implementation, fer_edge.train.evaluate.predict(model, x, flip=True) (and distill's by-name
    class remap): a script averaging with x[:, :, ::-1] itself could drift from what training and --teacher do."""
    by_hand = [p.name for p in SCRIPTS.rglob("*.py") if re.search(r"\[:, :, ::-1\]", p.read_text())]
    assert by_hand == []


def _backbone_tree(tmp: Path) -> tuple[Path, Path, Path]:
    """A tiny results/ tree: two benched compact bundles (one continuing the other), a 5-epoch grid run never
    converted, and a costs file with an untrained backbone."""
    from fer_edge.benchmarks.results import document, empty_row

    def run_json(d: Path, backbone: str, acc: float, epochs: int, secs: float, init: str = "none",
                 px: int = 48) -> None:
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({
            "status": "finished", "stage": "ferplus", "backbone": backbone, "input_size": px,
            "config": {"weights": "none"}, "init": {"from": init}, "timings": {"train_seconds": secs},
            "summary": {"accuracy": acc, "epochs": epochs}}))

    train = tmp / "results" / "train"
    run_json(train / "small", "compact", 0.80, 18, 3600.0)
    run_json(train / "small-more", "compact", 0.8224, 8, 1200.0, init=str(train / "small" / "model.keras"))
    run_json(train / "grid" / "vgg19" / "ferplus", "vgg19", 0.35, 5, 7200.0)
    rows = []
    for bundle, fp32, int8, ms in (("small", 0.80, 0.801, 0.8), ("small-more", 0.8224, 0.8227, 0.9)):
        for prec, acc, t in (("fp32", fp32, 3.0), ("int8", int8, ms)):
            rows.append(empty_row(model="m", bundle=f"runs/bundles/{bundle}", backbone="compact", format="tflite",
                                  precision=prec, backend="litert", threads=1, file="x", status="passed",
                                  size_mb=1.36 if prec == "int8" else 5.29, parameters=1324584, flops=277368832,
                                  accuracy=acc, eval_faces=3371, latency_p50_ms=t))
    device = {"name": "vm", "load_average": [1.5, 1.5, 1.5]}
    bench = tmp / "results" / "bench"
    (bench / "small-x86").mkdir(parents=True)
    (bench / "small-x86" / "results.json").write_text(json.dumps(document([{
        "id": "r1", "created": "2026-11-22T10:00:00+00:00", "device": device, "settings": {}, "rows": rows}])))
    costs = bench / "backbone-costs.json"
    costs.write_text(json.dumps({"backbones": {
        "vgg19": {"input_size": 48, "sizes": {"48": {"parameters": 20028232, "flops": 800000000}}},
        "efficientnetb0": {"input_size": 96, "sizes": {"48": {"parameters": 4059819, "flops": 30000000},
                                                       "96": {"parameters": 4059819, "flops": 120000000}}}}}))
    return bench, train, costs


def test_backbone_table_is_built_from_the_records(tmp_path) -> None:
    bench, train, costs = _backbone_tree(tmp_path)
    docs, readme = tmp_path / "bench.md", tmp_path / "README.md"
    docs.write_text("# B\n\n<!-- backbone-table -->\nSTALE TABLE\n<!-- /backbone-table -->\nafter\n")
    readme.write_text("x\n<!-- backbone-table-short -->\n<!-- /backbone-table-short -->\n")
    res = _run([sys.executable, str(SCRIPTS / "backbone_table.py"), "table", "--bench", str(bench), "--train",
                str(train), "--costs", str(costs), "--docs", str(docs), "--readme", str(readme)])
    assert res.returncode == 0, res.stderr[-2000:]
    text = docs.read_text()
    assert "STALE" not in text and text.endswith("<!-- /backbone-table -->\nafter\n")
    rows = {ln.split(" | ")[1].strip("*"): ln.split(" | ") for ln in text.splitlines() if ln.startswith("| ")}
    small, more, vgg = rows["small"], rows["small-more"], rows["vgg19-grid"]
    # the earlier step: continuing it added 2.24 points -> not converged; its own 18 epochs, 60 min
    assert small[5:8] == ["18", "60 min", "no: continuing it added +2.24 pp test"]
    assert small[8:] == ["80.00%", "80.10%", "0.80", "1.36 |"] and small[3:5] == ["1.32M", "277.37M"]
    assert more[5] == "8 (26 total)" and more[6] == "20 min (80 min total)"
    assert more[7] == "no: its 8 epochs added +2.24 pp test over its start"
    assert vgg[3:5] == ["20.03M", "800.00M"] and vgg[7] == "no: 5 epochs from scratch"
    assert vgg[8:10] == ["35.00% (Keras)", "not converted"]
    assert "| efficientnetb0 | 96 | 4.06M | 30.00M | 120.00M | not trained |" in text
    assert "vgg19 | 48 |" not in text.split("Registered")[1]  # trained: not in the second table
    assert "| **small-more** | 1.32M | 277.37M | 82.27% | 0.90 | no |" in readme.read_text()  # bold: on the front
    res = _run([sys.executable, str(SCRIPTS / "backbone_table.py"), "table", "--bench", str(tmp_path / "nope")])
    assert res.returncode == 2 and "no such folder" in res.stderr
    costs.write_text('{"backbones": ')  # cut short: one line naming the file, no traceback
    res = _run([sys.executable, str(SCRIPTS / "backbone_table.py"), "table", "--bench", str(bench), "--train",
                str(train), "--costs", str(costs)])
    assert res.returncode == 2 and f"{costs}: not readable JSON" in res.stderr and "Traceback" not in res.stderr


def test_backbone_convergence_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("backbone_table", SCRIPTS / "backbone_table.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "backbone_table", mod)  # its dataclass looks its module up
    spec.loader.exec_module(mod)
    assert mod.converged(5, True, None, [], 3.0) == "no: 5 epochs from scratch"
    assert mod.converged(8, False, 0.24, [-0.2], None).startswith("not quite: its 8 epochs added +0.24")
    assert mod.converged(18, True, None, [1.6, 0.3], None) == "no: continuing it added +1.60 pp test"
    assert mod.converged(6, False, 0.05, [], None).startswith("yes:")
    assert mod.converged(60, True, None, [], 0.2) == "maybe: val +0.20 pp over its last 3 epochs"


def test_backbone_table_reads_the_x86_runs_as_one_device(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same machine benched under two device names is one device (one row per bundle, one front); a run on
    another arch is left out, however quiet its machine was."""
    from fer_edge.benchmarks.results import document, empty_row

    spec = importlib.util.spec_from_file_location("backbone_table", SCRIPTS / "backbone_table.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "backbone_table", mod)
    spec.loader.exec_module(mod)
    bench, _, _ = _backbone_tree(tmp_path)

    def bench_run(folder: str, run_id: str, device: dict, bundle: str, ms: float, acc: float) -> None:
        rows = [empty_row(model="m", bundle=f"runs/bundles/{bundle}", backbone="compact", format="tflite",
                          precision="int8", backend="litert", threads=1, file="x", status="passed", size_mb=1.36,
                          parameters=1324584, flops=277368832, accuracy=acc, eval_faces=3371, latency_p50_ms=ms)]
        (bench / folder).mkdir()
        (bench / folder / "results.json").write_text(json.dumps(document([{
            "id": run_id, "created": "2026-11-23T10:00:00+00:00", "device": device, "settings": {}, "rows": rows}])))

    bench_run("again-x86", "r2", {"name": "x86-2core-dev", "arch": "x86_64", "load_average": [0.5, 0.5, 0.5]},
              "small", 0.95, 0.801)  # quieter: wins for small, and is dominated by small-more (0.90 ms, 82.27%)
    bench_run("small-pi5", "pi", {"name": "pi5", "arch": "aarch64", "load_average": [0.1, 0.1, 0.1]},
              "small-more", 5.0, 0.9)
    rows = mod.bench_rows(bench)
    assert sorted(rows) == ["small", "small-more"]
    assert (rows["small"]["run"]["id"], rows["small"]["front"]) == ("r2", False)
    assert (rows["small-more"]["run"]["id"], rows["small-more"]["front"]) == ("r1", True)
    assert rows["small"]["run"]["device"]["name"] == "x86-2core-dev"  # the sources line keeps the run's own name


def test_photo_accuracy_refuses_bad_data_at_once_and_records_its_command(tmp_path) -> None:
    """A missing or empty --data folder, or a .tiff not named like a JAFFE photo, is one line before any work; a
    photo where no face is found is measured (None where nothing could be), and the command written is the real
    one."""
    import cv2
    import numpy as np

    script = str(SCRIPTS / "photo_accuracy.py")
    (tmp_path / "empty").mkdir()
    odd = tmp_path / "odd"
    odd.mkdir()
    blank = np.full((256, 256), 128, np.uint8)  # no face in it
    cv2.imwrite(str(odd / "KA.AN1.39.tiff"), blank)
    cv2.imwrite(str(odd / "holiday.tiff"), blank)
    for data, why in ((tmp_path / "nope", "no such folder"), (tmp_path / "empty", "no JAFFE .tiff photos in it"),
                      (odd, "holiday.tiff is not a JAFFE photo name (like KA.AN1.39.tiff)")):
        res = _run([sys.executable, script, "--data", str(data), "--out", str(tmp_path / "out")])
        assert res.returncode == 1 and res.stderr.strip().splitlines() == [f"error: --data {data}: {why}"]
    assert not (tmp_path / "out").exists()
    (odd / "holiday.tiff").unlink()
    res = _run([sys.executable, script, "--data", str(odd), "--tilts=-20,20", "--out", str(tmp_path / "out")])
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "jaffe.json").read_text())
    assert doc["command"] == f"python scripts/photo_accuracy.py --data {odd} --tilts=-20,20 --out {tmp_path / 'out'}"
    assert doc["photos"] == 1 and doc["upright"]["detector_crop"]["found"] == 0
    assert doc["upright_eye_roll_degrees"]["max_abs"] is None and doc["scale_by_angle"]["20"]["box_vs_upright"] is None


@pytest.mark.slow
def test_fold_scores_rescores_the_kept_fold_models_plain_and_flipped(tmp_path) -> None:
    """A real 2-fold CK+ run with kept fold models, then the script: the fold flagged by the run's tta (plain here)
    reproduces each fold's recorded accuracy, and the means are those of the per-fold scores."""
    pytest.importorskip("keras", reason="the [train] extra trains the folds")
    from helpers.datasets import make_ckplus48

    data = make_ckplus48(tmp_path / "ckplus48")
    run = tmp_path / "run"
    res = _run([sys.executable, "-m", "fer_edge.cli", "train", "--chain", "ckplus", "--data", f"ckplus={data}",
                "--folds", "2", "--fold-epochs", "1", "--epochs", "1", "--input-size", "32", "--batch-size", "8",
                "--keep-fold-models", "--out", str(run)])
    assert res.returncode == 0, res.stderr[-2000:]
    stage, out = run / "compact" / "ckplus", tmp_path / "scores.json"
    res = _run([sys.executable, str(SCRIPTS / "fold_scores.py"), str(stage), "--out", str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    d = json.loads(out.read_text())
    recorded = [json.loads((stage / "folds" / f"fold_0{i}" / "result.json").read_text())["accuracy"] for i in (1, 2)]
    assert [r["plain"] for r in d["folds"]] == pytest.approx(recorded)
    for k in ("plain", "flip"):
        assert d[k]["mean"] == pytest.approx(sum(r[k] for r in d["folds"]) / 2)
    assert d["tta"] == "none"
    moved = tmp_path / "moved"
    data.rename(moved)  # the dataset moved since the run: --data points there, and the same faces are found
    res = _run([sys.executable, str(SCRIPTS / "fold_scores.py"), str(stage), "--data", str(moved)])
    assert res.returncode == 0 and res.stdout.startswith("plain: "), res.stderr[-2000:]
    fold = stage / "folds" / "fold_01" / "result.json"
    fold.write_text(json.dumps({**json.loads(fold.read_text()), "test_index": [10**6]}))
    for args, why in (([str(stage), "--data", str(moved)], "test_index does not fit"),  # a bad index
                      ([str(tmp_path)], "run.json")):  # no run there
        res = _run([sys.executable, str(SCRIPTS / "fold_scores.py"), *args])
        assert res.returncode != 0 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert res.stderr.startswith("error: ") and why in res.stderr, res.stderr


def test_recipe_curves_draws_runs_in_progress_and_finished(tmp_path) -> None:
    stage = tmp_path / "running" / "ckpt"
    stage.mkdir(parents=True)
    (stage / "state.json").write_text(json.dumps({"epochs_done": 3, "history": {
        "accuracy": [0.3, 0.5, 0.6], "val_accuracy": [0.35, 0.62, 0.58]}}))
    finished = tmp_path / "history.json"
    finished.write_text(json.dumps({"accuracy": [0.4, 0.7], "val_accuracy": [0.5, 0.71]}))
    out = tmp_path / "curves.png"
    res = _run([sys.executable, str(SCRIPTS / "recipe_curves.py"), f"a={stage.parent}", f"b={finished}",
                "--out", str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "a: 3 epochs, best Valid 62.00% at epoch 2" in res.stdout
    assert "b: 2 epochs, best Valid 71.00% at epoch 2" in res.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finished.write_text("{not json")
    res = _run([sys.executable, str(SCRIPTS / "recipe_curves.py"), f"b={finished}", "--out", str(out)])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "not readable JSON" in res.stderr


def test_tflite_quant_debug_ranks_layers_and_rescores_with_float_layers(tmp_path) -> None:
    from test_cli_extras import ferplus  # a FERPlus-layout folder of 16 noise faces per split

    data = tmp_path / "ferplus"
    ferplus(data)
    model = REPO / "results" / "train" / "sepnet-polish" / "model.keras"
    res = _run([sys.executable, str(SCRIPTS / "tflite_quant_debug.py"), str(model), "--data", str(data),
                "--calib", "8", "--top", "5", "--float-layers", "0,3"])
    assert res.returncode == 0, res.stderr[-3000:]
    steps = [float(m) for m in re.findall(r"^\s+([\d.]+)\s{2}\S", res.stdout, re.M)]
    assert len(steps) == 5 and steps == sorted(steps, reverse=True), res.stdout
    scores = re.findall(r"^(\d+) worst layers float: test ([\d.]+)% on 16 faces$", res.stdout, re.M)
    assert [k for k, _ in scores] == ["0", "3"] and all(0 <= float(a) <= 100 for _, a in scores), res.stdout
    res = _run([sys.executable, str(SCRIPTS / "tflite_quant_debug.py"), str(model), "--data", str(tmp_path / "no")])
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
