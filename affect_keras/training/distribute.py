"""Training on several devices with the engines that exist: `tf.distribute` on TensorFlow,
`keras.distribution` on JAX. Nothing home-made.

`--distribute` (a registry, name -> strategy builder):

* `none`: one device (default);
* `mirrored`: synchronous data parallelism over this machine's devices: TensorFlow's MirroredStrategy over
  its GPUs (over its logical CPUs where it has none), JAX's `keras.distribution.DataParallel` over
  `keras.distribution.list_devices()`;
* `multiworker`: TensorFlow's MultiWorkerMirroredStrategy over several machines (configured by each
  worker's `TF_CONFIG`) is refused with the reason: keras 3's `fit` fails under it, on TensorFlow's own
  tutorial too (keras-team/keras#20585, open). The input path is ready for it (tf.data shards by data);
* `tpu`: TensorFlow's TPUStrategy on a Colab / Cloud TPU.

`--batch-size` is the global batch: each step splits it across the replicas (so a run computes what the
one-device run computes, up to BatchNorm statistics, which are per replica). To keep the per-device batch
when adding devices, multiply `--batch-size` and, by the linear scaling rule (Goyal et al. 2017), `--lr`
by the number of replicas; train.py prints both.
"""

from __future__ import annotations

import contextlib


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


def _multiworker(batch_size: int):
    # keras 3's fit fails under this strategy ("Attempt to convert a value (PerReplica ...)"), also on
    # TensorFlow's own tutorial: keras-team/keras#20585, tensorflow/tensorflow#72388 (open)
    raise ValueError("--distribute multiworker: keras 3's Model.fit does not run under TensorFlow's "
                     "MultiWorkerMirroredStrategy (keras-team/keras#20585, open); use --distribute mirrored "
                     "on one machine with several GPUs")


def _tpu(batch_size: int):
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return _scope(tf.distribute.TPUStrategy(resolver), batch_size)


def _scope(strategy, batch_size: int):
    _check_batch(batch_size, strategy.num_replicas_in_sync)
    return strategy.scope(), strategy.num_replicas_in_sync


# the strategy registry: --distribute name -> builder of (scope, replicas) for the global batch size
STRATEGIES = {"none": _one_device, "mirrored": _mirrored, "multiworker": _multiworker, "tpu": _tpu}


def distribution(name: str, batch_size: int) -> tuple[contextlib.AbstractContextManager, int]:
    """(the scope to build, compile and fit in, the number of replicas) for `--distribute name`."""
    import keras

    backend = keras.backend.backend()
    if name != "none" and backend not in ("tensorflow", "jax"):
        raise ValueError(f"--distribute {name} needs the TensorFlow or the JAX backend, not {backend}")
    if backend == "jax" and name not in ("none", "mirrored"):
        raise ValueError(f"--distribute {name} needs the TensorFlow backend; on JAX, --distribute mirrored "
                         f"runs keras.distribution.DataParallel over the local devices")
    return STRATEGIES[name](batch_size)


def _check_batch(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise ValueError(f"--batch-size {batch_size} is the global batch and must divide evenly over the "
                         f"{replicas} replicas")
