"""Training on several devices with the engines keras supports, nothing patched: `tf.distribute` on
TensorFlow, `keras.distribution` on JAX.

`--distribute` (a registry, name -> strategy builder):

* `none`: one device (default);
* `mirrored`: synchronous data parallelism over this machine's devices: TensorFlow's MirroredStrategy over
  its GPUs (over its logical CPUs where it has none), JAX's `keras.distribution.DataParallel` over
  `keras.distribution.list_devices()` (GPUs, the cores of a TPU, or CPU devices).

`--batch-size` is the global batch: each step splits it across the replicas (so a run computes what the
one-device run computes, up to BatchNorm statistics, which are per replica). To keep the per-device batch
when adding devices, multiply `--batch-size` and, by the linear scaling rule (Goyal et al. 2017), `--lr`
by the number of replicas.
"""

from __future__ import annotations

import contextlib

from affect_keras.options import OptionError


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

    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    strategy = tf.distribute.MirroredStrategy(devices)
    _check_batch(batch_size, strategy.num_replicas_in_sync)
    return strategy.scope(), strategy.num_replicas_in_sync


# the distribution registry: --distribute name -> builder of (scope, replicas) for the global batch size
DISTRIBUTIONS = {"none": _one_device, "mirrored": _mirrored}
# the backends each strategy runs on (any, where not listed)
BACKENDS = {"mirrored": ("tensorflow", "jax")}


def distribution(name: str, batch_size: int) -> tuple[contextlib.AbstractContextManager, int]:
    """(the scope to build, compile and fit in, the number of replicas) for `--distribute name`."""
    import keras

    backend, backends = keras.backend.backend(), BACKENDS.get(name)
    if backends and backend not in backends:
        names = " or the ".join({"tensorflow": "TensorFlow", "jax": "JAX"}[b] for b in backends)
        raise OptionError("distribute", f"{name} needs the {names} backend, not {backend}")
    return DISTRIBUTIONS[name](batch_size)


def _check_batch(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise OptionError(
            "batch_size", f"{batch_size} is the global batch and must divide evenly over the {replicas} replicas"
        )
