"""What a model predicts: output heads, one class per head in one file of this package (the task registry
is `affect_keras.tasks`).

A head keeps together what the model and the data need of one output: its layers (`build`), its training
targets, its default loss and its metrics, its prediction columns and its model-card line. Adding a head
is adding one file here that defines a `Head` subclass decorated with `@register` (the package imports
every module in it but `base` and those whose name starts with `_`), its loss in `training.heads`, its
report section in `evaluation.sections`, and a task in `affect_keras.tasks`.

This package imports only the package root and keras (the layer test checks it), and keras only inside the
methods that build: importing it starts no TensorFlow.
"""

from __future__ import annotations

import importlib
import pkgutil

from affect_keras.heads.base import HEADS, Head, register

__all__ = ["HEADS", "Head", "register"]

# every public module of this package defines and registers one head
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
