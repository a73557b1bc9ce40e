"""Training on several devices with the engines that exist: `tf.distribute` on TensorFlow,
`keras.distribution` on JAX. Nothing home-made.

`--distribute` (a registry, name -> strategy builder):

* `none`: one device (default);
* `mirrored`: synchronous data parallelism over this machine's devices: TensorFlow's MirroredStrategy over
  its GPUs (over its logical CPUs where it has none), JAX's `keras.distribution.DataParallel` over
  `keras.distribution.list_devices()`;
* `multiworker`: TensorFlow's MultiWorkerMirroredStrategy over several machines, configured by each
  worker's `TF_CONFIG`; every worker runs the same command, each writing its own `--run-dir` (the chief's,
  worker 0's, is the run). The input path shards by data. keras 3's `fit` fails under this strategy as
  released (keras-team/keras#20585, open: TensorFlow's own tutorial fails the same way), in two places
  that `_fit_under_multiworker` corrects for the run (see there);
* `tpu`: TensorFlow's TPUStrategy on a Colab / Cloud TPU;
* `model-parallel` (JAX): `keras.distribution.ModelParallel` for a model too large for one device: every
  kernel's output channels (its last axis) are sharded over the local devices, whose mesh is
  ("batch": 1, "model": devices); each batch is seen whole by every device, XLA inserts the collectives.
  Variables whose last axis does not divide (biases, BatchNorm, odd channel counts) are replicated.

`--batch-size` is the global batch: each step splits it across the replicas (so a run computes what the
one-device run computes, up to BatchNorm statistics, which are per replica). To keep the per-device batch
when adding devices, multiply `--batch-size` and, by the linear scaling rule (Goyal et al. 2017), `--lr`
by the number of replicas; train.py prints both.
"""

from __future__ import annotations

import contextlib

from affect_keras.options import OptionError
from affect_keras.training.supervisor import started_file


def _one_device(batch_size: int):
    return contextlib.nullcontext(), 1


def _mirrored(batch_size: int):
    import keras

    if keras.backend.backend() == "jax":
        devices = keras.distribution.list_devices()
        _check_batch(batch_size, len(devices))
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext(), len(devices)
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
              [d.name for d in tf.config.list_logical_devices("CPU")]
    return _scope(tf.distribute.MirroredStrategy(devices), batch_size)


def check_tf_config(text: str | None) -> dict:
    """The cluster in TF_CONFIG, checked before TensorFlow reads it (its own parse error names no variable)."""
    import json

    if not text:
        raise OptionError("distribute", "multiworker needs TF_CONFIG: a JSON cluster description in the "
                                        "environment of every worker (see docs/devices.md)")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise OptionError("distribute", f"multiworker: TF_CONFIG is not valid JSON ({error})") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster.get("worker") or not isinstance(task, dict) \
            or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise OptionError("distribute", "multiworker: TF_CONFIG must hold {\"cluster\": {\"worker\": [\"host:port\", "
                         "...]}, \"task\": {\"type\": \"worker\", \"index\": N}} with N one of the workers")
    return config


def _multiworker(batch_size: int):
    import os

    import tensorflow as tf

    check_tf_config(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # the cluster from TF_CONFIG: blocks until it forms
    started = started_file()
    if started is not None:  # tell train.py's watcher (training/supervisor.py) that every worker came
        started.touch()
    _fit_under_multiworker()
    return _scope(strategy, batch_size)


def _fit_under_multiworker() -> None:
    """Correct the two places where keras 3's TensorFlow trainer fails under MultiWorkerMirroredStrategy
    (keras-team/keras#20585, tensorflow/tensorflow#72388), for that strategy only; every other strategy
    takes keras' own code:

    * `fit` builds the model symbolically from a first batch that it averages over the replicas with
      `strategy.reduce`, which cannot take a per-replica batch in eager mode across workers ("Attempt to
      convert a value (PerReplica ...) to a Tensor"). The build needs the batch's shapes only: take them
      from the dataset's element spec (one replica's), which reads no batch (keras reads one at every
      `fit` and `evaluate`: a decoded batch and its prefetched followers thrown away each time);
    * each step's logs are averaged with `strategy.reduce("MEAN", v, axis=0)`, which fails on the scalar
      logs ("Invalid reduction dimension 0 for input with 0 dimensions"): average them over the replicas
      (axis None), as the one-worker path's `reduce_mean` over the replicas does.

    Checked by tests/test_distribute.py (two workers on loopback addresses agree on the trained weights);
    it can go once keras fixes the issue."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_affect_keras_multiworker", False):
        return
    multi_worker, build, reduce = (trainer._collective_all_reduce_multi_worker,
                                   trainer.TensorFlowTrainer._maybe_symbolic_build, trainer.reduce_per_replica)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not multi_worker(strategy):
            return build(self, iterator, data_batch)
        one_replica = lambda spec: spec._value_specs[0] if hasattr(spec, "_value_specs") else spec  # noqa: E731
        data_batch = tf.nest.map_structure(one_replica, iterator._distributed_dataset.element_spec)
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if multi_worker(strategy) and reduction in ("auto", "mean"):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer._affect_keras_multiworker = True


def _tpu(batch_size: int):
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return _scope(tf.distribute.TPUStrategy(resolver), batch_size)


def _model_parallel(batch_size: int):
    import keras

    keras.distribution.set_distribution(kernels_over_devices(keras.distribution.list_devices()))
    return contextlib.nullcontext(), 1  # every device sees the whole batch


def kernels_over_devices(devices):
    """A `keras.distribution.ModelParallel` over `devices` whose layout is chosen by each variable's shape,
    not by a map of variable paths (every backbone names its layers differently): a kernel (2 or more
    axes) whose output channels divide over the devices is sharded along them; the rest is replicated."""
    import keras

    class KernelsOverDevices(keras.distribution.ModelParallel):
        def __init__(self, devices):
            mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices)
            super().__init__(layout_map=keras.distribution.LayoutMap(mesh), batch_dim_name="batch")

        def get_variable_layout(self, variable):
            shape, devices = tuple(variable.shape), self.device_mesh.shape[1]
            axes = [None] * len(shape)
            if len(shape) >= 2 and shape[-1] % devices == 0:
                axes[-1] = "model"
            return keras.distribution.TensorLayout(axes, self.device_mesh)

    return KernelsOverDevices(devices)  # defined here: keras is imported when a run starts, not for --help


def _scope(strategy, batch_size: int):
    _check_batch(batch_size, strategy.num_replicas_in_sync)
    return strategy.scope(), strategy.num_replicas_in_sync


# the strategy registry: --distribute name -> builder of (scope, replicas) for the global batch size
STRATEGIES = {"none": _one_device, "mirrored": _mirrored, "multiworker": _multiworker, "tpu": _tpu,
              "model-parallel": _model_parallel}
# the backends each strategy runs on (any, where not listed), and what to use on the others
BACKENDS = {"mirrored": ("tensorflow", "jax"), "multiworker": ("tensorflow",), "tpu": ("tensorflow",),
            "model-parallel": ("jax",)}
INSTEAD = {"jax": "on JAX, --distribute mirrored runs keras.distribution.DataParallel over the local devices",
           "tensorflow": "on TensorFlow, --distribute mirrored runs MirroredStrategy over the local devices"}


def distribution(name: str, batch_size: int) -> tuple[contextlib.AbstractContextManager, int]:
    """(the scope to build, compile and fit in, the number of replicas) for `--distribute name`."""
    import keras

    backend, backends = keras.backend.backend(), BACKENDS.get(name)
    if backends and backend not in backends:
        names = " or the ".join({"tensorflow": "TensorFlow", "jax": "JAX"}[b] for b in backends)
        raise OptionError("distribute", f"{name} needs the {names} backend, not {backend}"
                                        + (f"; {INSTEAD[backend]}" if backend in INSTEAD else ""))
    return STRATEGIES[name](batch_size)


def _check_batch(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise OptionError("batch_size", f"{batch_size} is the global batch and must divide evenly over the "
                                        f"{replicas} replicas")
