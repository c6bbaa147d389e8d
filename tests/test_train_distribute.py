"""Training under tf.distribute (fer_edge/train/distribute.py): the strategy choice, the batch and learning-rate
rule, TF_CONFIG roles, MirroredStrategy over two logical CPU devices against one device, and two real
MultiWorkerMirroredStrategy workers on 127.0.0.1 (a full run, a worker killed mid-run, then --resume)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.train import distribute
from fer_edge.train.config import config_from_settings

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys\nfrom fer_edge.cli import main\nmain(sys.argv[1:])\n"]


# ----------------------------------------------------------------------------------------------- rules, no TF


def _cfg(index: int, kind: str = "worker", chief: bool = False) -> dict:
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    if chief:
        cluster["chief"] = ["127.0.0.1:3"]
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def test_batch_and_learning_rate_rule() -> None:
    assert distribute.global_batch(64, 1) == 64 and distribute.global_batch(64, 4) == 256
    assert distribute.scaled_lr(1e-3, 1) == 1e-3
    assert math.isclose(distribute.scaled_lr(1e-3, 4), 2e-3)
    assert distribute.NONE.lr(0.01) == 0.01 and distribute.NONE.global_batch(32) == 32


def test_roles_and_choice_from_tf_config() -> None:
    assert distribute.is_chief(None) and distribute.tasks(None) == 1
    assert distribute.is_chief(_cfg(0)) and not distribute.is_chief(_cfg(1))
    assert distribute.is_chief(_cfg(0, "chief", chief=True)) and not distribute.is_chief(_cfg(0, chief=True))
    assert distribute.tasks(_cfg(0, chief=True)) == 3
    assert distribute.choose("auto", None, 0) == "none"
    assert distribute.choose("auto", None, 2) == "mirrored"
    assert distribute.choose("auto", _cfg(1), 0) == "multiworker"
    with pytest.raises(FerEdgeError, match="needs TF_CONFIG"):
        distribute.choose("multiworker", None, 0)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "chief and worker"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "must name this process"),
    ('{"cluster": {"worker": ["a:1"]}}', "must name this process"),
])
def test_bad_tf_config_is_one_line(text: str, match: str) -> None:
    with pytest.raises(FerEdgeError, match=match):
        distribute.tf_config({"TF_CONFIG": text})


def test_distribute_setting_is_checked_and_read_from_files() -> None:
    assert config_from_settings({"out": "x"}).distribute == "auto"
    assert config_from_settings({"out": "x", "distribute": "mirrored"}).distribute == "mirrored"
    with pytest.raises(FerEdgeError, match="--distribute"):
        config_from_settings({"out": "x", "distribute": "ring"}).validate()


def test_other_workers_write_a_temp_folder_they_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    out = tmp_path / "run"
    worker = distribute.Distribution("multiworker", None, 2, 2, 1, chief=False)
    with distribute.run_folder(out, worker, resume=False) as folder:
        assert folder.parent == tmp_path / "tmp" and folder.is_dir()
        (folder / "x").write_text("1")
    assert not folder.exists() and not out.exists()
    with pytest.raises(FerEdgeError, match="shared file system"), distribute.run_folder(out, worker, resume=True):
        pass
    out.mkdir()
    (out / "chain.json").write_text("{}")
    with distribute.run_folder(out, worker, resume=True) as folder:  # resumes from a copy of the chief's folder
        assert (folder / "chain.json").read_text() == "{}"
    assert list((tmp_path / "tmp").iterdir()) == []
    with distribute.run_folder(out, distribute.NONE, resume=False) as folder:
        assert folder == out


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0", "soon"])
def test_a_bad_heartbeat_setting_is_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(distribute.HEARTBEAT_ENV, value)
    with pytest.raises(FerEdgeError, match="number of seconds > 0"):
        distribute.heartbeat_seconds()


def test_the_heartbeat_setting_reads_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(distribute.HEARTBEAT_ENV, raising=False)
    assert distribute.heartbeat_seconds() == 30
    monkeypatch.setenv(distribute.HEARTBEAT_ENV, "2.5")
    assert distribute.heartbeat_seconds() == 2.5


def test_lost_worker_line_names_the_cause() -> None:
    why = distribute._why
    assert why(Exception("aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy "
                         "(stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.")
               ) == "worker 1 stopped sending heartbeats"
    assert why(Exception("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:36719: Failed to "
                         "connect to remote host: Connection refused")) == "127.0.0.1:36719: refused"
    assert why(ValueError("something else")) == "ValueError"


# ----------------------------------------------------------------------------------------------- TensorFlow

MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keras import layers
    from fer_edge.train import distribute
    from fer_edge.train.synthetic import bar_faces
    from fer_edge.train.trainer import Phase, StageConfig, train_stage

    # one step per epoch: under a strategy Keras reads the dataset once more to learn its shapes, which moves
    # the reshuffle on by one epoch, so with several steps the batches would differ (not the arithmetic)
    ds, _ = bar_faces(64, size=16)
    train, val = ds.take(np.arange(32)), ds.take(np.arange(32, 64))

    def model():  # no BatchNorm and no dropout: replicas then compute exactly what one device does
        keras.utils.set_random_seed(0)
        inp = keras.Input((16, 16, 1))
        feat = keras.Sequential([keras.Input((16, 16, 1)), layers.Conv2D(8, 3, activation="relu")], name="backbone")
        x = layers.GlobalAveragePooling2D(name="gap")(feat(inp))
        return keras.Model(inp, layers.Dense(2, activation="softmax", name="head")(x))

    out = {}
    for kind, batch in (("mirrored", 16), ("none", 32)):  # the same global batch of 32
        dist = distribute.setup(kind)
        lr = 0.02 / dist.lr(1.0)  # the same effective learning rate under the sqrt rule
        cfg = StageConfig(input_size=16, batch_size=batch, augment="none", soft_labels=False, dropout=0.0,
                          phases=(Phase("all", 1.0, lr, 4),), patience=99)
        res = train_stage(train, val, cfg, sys.argv[1] + "/" + kind, init=model(), verbose=0)
        out[kind] = {"replicas": dist.replicas, "loss": res.history["loss"], "val_loss": res.history["val_loss"],
                     "fps": res.history["faces_per_second"]}
    # the rest of the trainer under the strategy: FGSM neighbours, weight averaging, strong augmentation
    distribute.setup("mirrored")
    keras.backend.clear_session()
    cfg = StageConfig(input_size=16, batch_size=8, augment="strong", soft_labels=False, adversarial=0.5, swa=2,
                      phases=(Phase("all", 1.0, 0.01, 3),), patience=99)
    res = train_stage(train, val, cfg, sys.argv[1] + "/adv", init=model(), verbose=0)
    state = json.load(open(sys.argv[1] + "/adv/ckpt/state.json"))
    saved = keras.models.load_model(res.model_path)
    out["adv"] = {"epochs": len(res.history["loss"]), "adv_loss": "adv_loss" in res.history,
                  "swa": state["swa"]["epochs"], "outputs": int(saved.output_shape[-1])}
    # distillation under the strategy from an ensemble of the two models trained above (their classes told by a
    # run.json beside each, as a fer-edge stage writes it): same targets as on one device
    from fer_edge.train.distill import distilled_targets, ensemble_probabilities, teacher_paths
    teachers = []
    for kind in ("mirrored", "none"):
        model_path = sys.argv[1] + "/" + kind + "/model.keras"
        json.dump({"classes": list(train.classes)}, open(sys.argv[1] + "/" + kind + "/run.json", "w"))
        teachers.append(model_path)
    keras.backend.clear_session()
    cfg = StageConfig(input_size=16, batch_size=8, augment="none", soft_labels=False, dropout=0.0,
                      teacher=",".join(teachers), teacher_weight=0.5, phases=(Phase("all", 1.0, 0.01, 2),),
                      patience=99)
    res = train_stage(train, val, cfg, sys.argv[1] + "/kd", init=model(), verbose=0)
    distribute.setup("none")
    tp = ensemble_probabilities(teacher_paths(cfg.teacher), train)
    out["kd"] = {"epochs": len(res.history["loss"]), "finite": bool(np.isfinite(res.history["loss"]).all()),
                 "teacher_rows": tp.shape[0], "row_sums": float(abs(tp.sum(1) - 1).max()),
                 "soft": float(distilled_targets(np.eye(2)[train.local_labels()], tp, 0.5).max())}
    print(json.dumps(out))
""")


def _tf_env(tmp_path: Path) -> dict:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_mirrored_two_devices_follow_one_device(tmp_path: Path) -> None:
    """Per-replica batch 16 on 2 replicas vs batch 32 on one device, LR by the sqrt rule: training and validation
    losses agree within 1e-5 relative per epoch (float sums in another order; measured here: 2e-7)."""
    r = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], capture_output=True, text=True,
                       timeout=600, env=_tf_env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["mirrored"]["replicas"] == 2 and out["none"]["replicas"] == 1
    one, two = out["none"], out["mirrored"]
    assert len(one["loss"]) == len(two["loss"]) == 4
    assert one["loss"][-1] < one["loss"][0]  # it learns, so the trajectory says something
    for key in ("loss", "val_loss"):
        assert two[key] == pytest.approx(one[key], rel=1e-5), key
    assert all(f > 0 for f in one["fps"] + two["fps"])
    assert out["adv"] == {"epochs": 3, "adv_loss": True, "swa": 2, "outputs": 2}
    kd = out["kd"]
    assert kd["epochs"] == 2 and kd["finite"] and kd["teacher_rows"] == 32
    assert kd["row_sums"] < 1e-5 and kd["soft"] < 1.0  # the ensemble's probabilities soften the one-hot targets


def _ports() -> list[int]:
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_workers(tmp_path: Path, args: list[str], log: str) -> list[subprocess.Popen]:
    ports = _ports()
    procs = []
    for i in range(2):
        env = {**_tf_env(tmp_path), "FER_EDGE_HEARTBEAT_SECONDS": "20", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}})}
        env.pop("TF_CPP_MIN_LOG_LEVEL")  # what the CLI does about TensorFlow's own log lines is tested too
        with open(tmp_path / f"{log}{i}.out", "w") as o, open(tmp_path / f"{log}{i}.err", "w") as e:
            procs.append(subprocess.Popen([*CLI, "train", *args], stdout=o, stderr=e, env=env, cwd=tmp_path))
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float = 900) -> list[int]:
    end = time.time() + timeout
    try:
        return [p.wait(timeout=max(1.0, end - time.time())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _lines(path: Path) -> list[str]:
    """stderr without tqdm's progress bars."""
    bars = re.compile(r"[^\r\n]*\d+/\d+ \[[^]\n]*(model/s|s/model)\]")
    return [line for line in bars.sub("", path.read_text()).replace("\r", "\n").splitlines() if line.strip()]


def _args(ferplus_dir: Path, run: Path, limit: int, epochs: int) -> list[str]:
    return ["--chain", "ferplus", "--data", f"ferplus={ferplus_dir}", "--limit", str(limit), "--epochs", str(epochs),
            "--distribute", "multiworker", "--out", str(run)]


def _check_run(run: Path, tmp_path: Path, epochs: int) -> dict:
    stage = run / "compact" / "ferplus"
    for name in ("model.keras", "report.json", "run.json", "history.csv", "curves.png", "confusion.png"):
        assert (stage / name).is_file(), name
    assert (run / "summary.md").is_file()
    info = json.loads((stage / "run.json").read_text())
    assert info["status"] == "finished" and info["distribute"]["replicas"] == 2 and info["distribute"]["chief"]
    assert info["timings"]["faces_per_second"] > 0
    hist = json.loads((stage / "history.json").read_text())
    assert len(hist["loss"]) == len(hist["faces_per_second"]) == epochs
    # no worker temp folder left (a SIGKILLed process leaves TensorFlow's own temp files, not ours)
    assert [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith(distribute.WORKER_PREFIX)] == []
    return info


@pytest.mark.slow
def test_two_workers_train_a_chain(tmp_path: Path, ferplus_dir: Path) -> None:
    run = tmp_path / "RUN"
    rcs = _wait(_start_workers(tmp_path, _args(ferplus_dir, run, 256, 1), "w"))
    assert rcs == [0, 0], [(tmp_path / f"w{i}.err").read_text()[-2000:] for i in range(2)]
    _check_run(run, tmp_path, 1)
    assert "trained in step with the chief" in (tmp_path / "w1.out").read_text()
    assert "summary:" in (tmp_path / "w0.out").read_text()
    for i in range(2):
        assert _lines(tmp_path / f"w{i}.err") == [], i  # nothing from TensorFlow on stderr


@pytest.mark.slow
def test_a_lost_worker_stops_the_other_with_one_line_and_resume_finishes(tmp_path: Path, ferplus_dir: Path) -> None:
    run = tmp_path / "RUN"
    args = _args(ferplus_dir, run, 128, 3)
    procs = _start_workers(tmp_path, args, "a")
    state = run / "compact" / "ferplus" / "ckpt" / "state.json"
    end = time.time() + 600
    while not state.is_file() and time.time() < end and procs[0].poll() is None:
        time.sleep(0.5)
    assert state.is_file(), (tmp_path / "a0.err").read_text()[-2000:]
    procs[1].send_signal(signal.SIGKILL)  # worker 1 is lost after the first checkpoint
    rc = _wait(procs[:1], 300)[0]
    procs[1].wait()
    lines = _lines(tmp_path / "a0.err")
    assert rc == 1 and len(lines) == 1, lines
    assert lines[0].startswith("error: worker 0: lost contact with another training worker") and "--resume" in lines[0]
    done = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done < 3

    rcs = _wait(_start_workers(tmp_path, [*args, "--resume"], "b"))
    assert rcs == [0, 0], [(tmp_path / f"b{i}.err").read_text()[-2000:] for i in range(2)]
    for i in range(2):
        assert f"resuming at epoch {done}" in (tmp_path / f"b{i}.out").read_text()
    _check_run(run, tmp_path, 3)
