"""The one way the package opens a .tflite model: Google's LiteRT interpreter (`ai-edge-litert`, the
runtime that replaces TensorFlow's deprecated `tf.lite.Interpreter`), else TensorFlow's own where LiteRT
has no wheel (Windows). Used for the shipped face detector and for exported models."""

from __future__ import annotations

from pathlib import Path


def tflite_interpreter(path: str | Path, threads: int | None = None):
    """An interpreter of the .tflite file at `path` (tensors not yet allocated)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path), num_threads=threads)
