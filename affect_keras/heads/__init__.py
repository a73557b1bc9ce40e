"""What a model predicts: output heads, one class per head in one file of this package (`expression`: class
probabilities; `va`: valence and arousal in [-1, 1]; `polarity`: positive / neutral / negative, which with
`expression` makes p(class) = p(polarity of class) * p(class | polarity)), each keeping what the model and
the data need of its output (layers, targets, default loss and metrics, prediction columns, card line).

Adding a head: one file here with a `Head` subclass decorated with `@register` (the package imports every
module but `base` and those named `_*`), its loss in `training.losses.HEAD_LOSSES`, its report section in
`evaluation.sections.SECTIONS`, a task in `affect_keras.tasks`. This package imports only the package root
and keras, keras only inside the methods that build: importing it starts no TensorFlow.
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
