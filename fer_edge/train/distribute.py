"""Training on several devices or machines with TensorFlow's own tf.distribute (no scheme of fer-edge's own).

``--distribute`` picks the strategy once per process (``setup``), before any other TensorFlow work:

- ``none``: TensorFlow's default strategy, one device (what a one-GPU or CPU run always did);
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over this host's GPUs (with none, its logical CPU devices);
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the hosts the standard ``TF_CONFIG``
  environment variable names (every worker runs the same command);
- ``auto``: multiworker when TF_CONFIG names more than one task, mirrored when more than one GPU is visible,
  else none.

The one rule for batch and learning rate: ``--batch-size`` is the batch of each replica, so a replica holds what a
one-device run holds (and BatchNorm sees the same batch size, as its statistics are per replica); the global
batch is ``batch_size x replicas``, and every learning rate (each phase's; the plateau floor ``min_lr`` excepted)
is multiplied by ``sqrt(replicas)``: the square-root scaling rule for Adam-type optimizers (Malladi et al.,
NeurIPS 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms"; fer-edge always trains with
AdamW). One replica changes nothing.

Roles: the chief (task ``chief``, or worker 0 when the cluster has no chief) writes the run folder; every other
worker runs the very same chain into a temporary folder of its own (Keras needs every worker to take part in each
save, as the variables are read collectively) and removes it at the end. A worker lost mid-run makes the others
stop with one line (``WorkerLost``); ``--resume`` on every worker continues from the chief's last checkpoint
(the others copy the chief's run folder first, so ``--out`` must be a folder they all see).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fer_edge import atomic
from fer_edge.errors import FerEdgeError

DISTRIBUTE = ("auto", "none", "mirrored", "multiworker")
WORKER_PREFIX = "fer-edge-worker-"
HEARTBEAT_ENV = "FER_EDGE_HEARTBEAT_SECONDS"  # how soon a lost worker is noticed (default 30 s)


class WorkerLost(FerEdgeError):
    """A training worker stopped answering (killed, crashed, network gone): the others stop with this line."""

    exit_code = 1


@dataclass(frozen=True)
class Distribution:
    """The strategy of this process and what follows from it."""

    kind: str                     # none | mirrored | multiworker
    strategy: object | None       # the tf.distribute strategy; None = TensorFlow's default (one device)
    replicas: int = 1
    workers: int = 1
    task_index: int = 0
    chief: bool = True

    def scope(self) -> contextlib.AbstractContextManager:
        """Where models, optimizers and their variables are made (a no-op for one device)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def global_batch(self, per_replica: int) -> int:
        return global_batch(per_replica, self.replicas)

    def lr(self, lr: float) -> float:
        return scaled_lr(lr, self.replicas)

    def describe(self) -> dict:
        """As run.json records it."""
        return {"kind": self.kind, "replicas": self.replicas, "workers": self.workers, "task_index": self.task_index,
                "chief": self.chief, "lr_scale": scaled_lr(1.0, self.replicas)}


NONE = Distribution("none", None)
_current: Distribution = NONE


def global_batch(per_replica: int, replicas: int) -> int:
    """The batch one optimizer step sees: ``--batch-size`` on every replica."""
    return int(per_replica) * max(1, int(replicas))


def scaled_lr(lr: float, replicas: int) -> float:
    """The learning rate for ``replicas`` replicas: square-root scaling (see the module docstring)."""
    return float(lr) * math.sqrt(max(1, int(replicas)))


def current() -> Distribution:
    """The distribution ``setup`` chose for this process (one device if it was never called)."""
    return _current


def tf_config(env: dict | None = None) -> dict | None:
    """TF_CONFIG, checked (it is untrusted input): {"cluster": {job: [host:port, ...]}, "task": {type, index}}."""
    text = (os.environ if env is None else env).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        raise FerEdgeError(f"TF_CONFIG is not valid JSON ({exc})") from None
    cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
    task = cfg.get("task") if isinstance(cfg, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
            isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v) for v in cluster.values()):
        raise FerEdgeError('TF_CONFIG: "cluster" must map job names to lists of host:port, e.g. '
                           '{"worker": ["host1:12345", "host2:12345"]}')
    if set(cluster) - {"chief", "worker"}:
        raise FerEdgeError(f"TF_CONFIG: multiworker training takes chief and worker jobs, got {sorted(cluster)}")
    if len(cluster.get("chief", [])) > 1:
        raise FerEdgeError("TF_CONFIG: at most one chief")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise FerEdgeError('TF_CONFIG: "task" must name this process, e.g. {"type": "worker", "index": 0}, '
                           f"within the cluster {cluster}")
    return cfg


def is_chief(cfg: dict | None) -> bool:
    """The task that writes the run folder: "chief", else worker 0 when the cluster has no chief."""
    if cfg is None:
        return True
    task = cfg["task"]
    if "chief" in cfg["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def tasks(cfg: dict | None) -> int:
    return sum(len(v) for v in cfg["cluster"].values()) if cfg else 1


def choose(kind: str, cfg: dict | None, gpus: int) -> str:
    """What ``auto`` means here; an explicit kind is checked against what this process can do."""
    if kind not in DISTRIBUTE:
        raise FerEdgeError(f"--distribute: choose one of {', '.join(DISTRIBUTE)}, got {kind!r}")
    if kind == "auto":
        return "multiworker" if tasks(cfg) > 1 else "mirrored" if gpus > 1 else "none"
    if kind == "multiworker" and cfg is None:
        raise FerEdgeError("--distribute multiworker needs TF_CONFIG naming the cluster and this task, e.g. "
                           'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                           '"task": {"type": "worker", "index": 0}}\'')
    return kind


def setup(kind: str = "auto") -> Distribution:
    """Create this process's strategy (call it before other TensorFlow work; a multiworker one only once)."""
    global _current
    import tensorflow as tf

    cfg = tf_config() if kind in ("auto", "multiworker") else None
    kind = choose(kind, cfg, len(tf.config.list_physical_devices("GPU")))
    if _current.kind == "multiworker":
        if kind != "multiworker":
            raise FerEdgeError("this process already joined a multiworker cluster; it cannot train otherwise")
        return _current
    if kind == "none":
        _current = NONE
    elif kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        _current = Distribution("mirrored", strategy, strategy.num_replicas_in_sync)
    else:
        _current = _multiworker(cfg)
    return _current


def _multiworker(cfg: dict) -> Distribution:
    import tensorflow as tf

    _heartbeat(cfg)
    _patch_keras()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = cfg["task"]
    return Distribution("multiworker", strategy, strategy.num_replicas_in_sync, tasks(cfg),
                        int(task["index"]) + (1 if task["type"] == "worker" and "chief" in cfg["cluster"] else 0),
                        is_chief(cfg))


def heartbeat_seconds() -> float:
    """``$FER_EDGE_HEARTBEAT_SECONDS`` (default 30): a finite number of seconds > 0, else one clear line."""
    text = os.environ.get(HEARTBEAT_ENV, "30")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise FerEdgeError(f"{HEARTBEAT_ENV} must be a number of seconds > 0, got {text!r}")
    return seconds


def _heartbeat(cfg: dict) -> None:
    """Set how soon the coordination service declares a silent worker lost (TensorFlow's default waits minutes).
    Uses the configuration call MultiWorkerMirroredStrategy itself makes; where a TensorFlow version lacks it,
    its own default stays."""
    seconds = heartbeat_seconds()
    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as cc
        from tensorflow.python.eager import context
    except ImportError:
        return
    ctx = context.context()
    if ctx.coordination_service is not None:
        return
    leader = "chief" if "chief" in cfg["cluster"] else "worker"
    jobs = [cc.CoordinatedJob(name=j, num_tasks=len(cfg["cluster"][j])) for j in ("chief", "worker")
            if j in cfg["cluster"]]
    ctx.configure_coordination_service(service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
                                       heartbeat_timeout_in_ms=int(seconds * 1000), coordinated_jobs=jobs)


def _patch_keras() -> None:
    """Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow#72388): it
    all-reduces the first input batch as one tuple just to learn its shapes, and averages the scalar losses along
    an axis they lack. Two narrow fixes, only in a multiworker process: shapes from the local replica's batch
    (no collective), and scalar logs averaged across replicas without an axis."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tft

    if getattr(tft, "_fer_edge_patched", False):
        return

    def first_local(v: object, strategy: object) -> object:
        return strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v

    def maybe_symbolic_build(self: object, iterator: object = None, data_batch: object = None) -> None:
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(lambda v: first_local(v, self.distribute_strategy), next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = tft.reduce_per_replica

    def reduce_per_replica(values: object, strategy: object, reduction: str = "auto") -> object:
        if reduction in ("auto", "mean") and tft._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if len(first_local(v, strategy).shape) else None),
                values)
        return original(values, strategy, reduction)

    tft.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tft.reduce_per_replica = reduce_per_replica
    tft._fer_edge_patched = True


def shard_options() -> object:
    """tf.data options that split a dataset made from in-memory arrays across workers by element (DATA)."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return opts


@contextlib.contextmanager
def run_folder(out: Path, dist: Distribution, resume: bool) -> Iterator[Path]:
    """Where this worker writes: ``out`` for the chief; for any other worker a temporary folder (a copy of the
    chief's ``out`` on --resume, so it resumes from the same checkpoint), removed when the run ends."""
    if dist.chief:
        yield out
        return
    atomic.sweep_temp_root(WORKER_PREFIX)  # what killed workers left
    tmp = Path(tempfile.mkdtemp(prefix=atomic.temp_dir_prefix(WORKER_PREFIX)))
    try:
        if resume:
            if not (out / "chain.json").is_file():
                raise FerEdgeError(f"worker {dist.task_index}: --resume, but {out} holds no run here; with "
                                   "--distribute multiworker, --out must be a folder every worker sees "
                                   "(a shared file system)")
            shutil.copytree(out, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*.tmp*"))
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def collectives_guard(dist: Distribution) -> Iterator[None]:
    """A lost worker (collectives failing or timing out) as one line instead of a TensorFlow traceback."""
    try:
        yield
    except Exception as exc:
        if dist.workers < 2:
            raise
        import tensorflow as tf

        lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError)
        if not isinstance(exc, lost):
            raise
        raise WorkerLost(f"worker {dist.task_index}: lost contact with another training worker ({_why(exc)}); "
                         "start every worker again with --resume to continue from the last checkpoint") from None


def _why(exc: Exception) -> str:
    """The gist of a collective's error: which task stopped sending heartbeats, or which address refused."""
    text = str(exc)
    if "unhealthy" in text:
        lost = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text.split("unhealthy", 1)[1])
        if lost:
            return ", ".join(f"{job} {task}" for job, task in dict.fromkeys(lost)) + " stopped sending heartbeats"
    refused = re.search(r"ipv[46]:(\S+?): [^\n\"]*(refused|unreachable|timed out)", text, re.I)
    if refused:
        return f"{refused[1]}: {refused[2].lower()}"
    return type(exc).__name__
