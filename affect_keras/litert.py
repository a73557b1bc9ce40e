"""The one way the package opens a .tflite model: Google's LiteRT interpreter (`ai-edge-litert`, the
runtime that replaces TensorFlow's deprecated `tf.lite.Interpreter`, installed with the package on every
platform it claims), else TensorFlow's own where LiteRT is missing. Used for the shipped face detector and
for exported models."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def tflite_interpreter(path: str | Path, threads: int | None = None):
    """An interpreter of the .tflite file at `path`, its tensors allocated and run once on zeros: LiteRT
    creates its XNNPACK delegate on the first run and says so on the process's standard error ("INFO:
    Created TensorFlow Lite XNNPACK delegate for CPU."), a line for every model that a command's user has
    no use for; that first run happens here, with the native standard error silenced."""
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    with _native_stderr_silenced():
        interpreter.allocate_tensors()
        for tensor in interpreter.get_input_details():
            interpreter.set_tensor(tensor["index"], np.zeros(tensor["shape"], tensor["dtype"]))
        interpreter.invoke()
    return interpreter


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 pointed at the null device (what C++ code prints there), Python's sys.stderr
    flushed before and left as it is."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no file descriptor 2 (an embedding host): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
