"""Register the package's custom keras objects as soon as keras is imported, without importing it.

`keras.saving.load_model(path, safe_mode=True)` finds a custom class only if it is registered (keras
imports modules by a saved config's name only for its own packages). Registration means importing the
modules that define them, and those import keras, which imports TensorFlow: four seconds that `--help`
and `import affect_keras` should not pay. So when keras is not loaded yet, a one-shot import hook waits for
it and registers right after keras's own module has run.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

# the modules whose classes saved models, checkpoints and presets name (all under package "affect_keras")
MODULES = (
    "affect_keras.models.classifier",  # ExpressionClassifier
    "affect_keras.models.preprocessing",  # BackbonePreprocessing, ToImage
    "affect_keras.heads._hierarchical",  # HierarchicalProbabilities
    "affect_keras.training.logit_adjustment",  # LogitAdjustedCrossentropy (a compiled checkpoint's loss)
    "affect_keras.training.va",  # MaskedMeanSquaredError, ConcordanceLoss, Concordance
)


def register_custom_objects() -> None:
    """Import every module that registers a custom keras object (idempotent)."""
    for module in MODULES:
        importlib.import_module(module)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` as the other finders would, and registers the package's objects once it has run. Only
    running keras uses the hook up: `importlib.util.find_spec("keras")` (the commands' check that keras is
    installed) finds a spec that is never run, and the hook stays for the real import."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        spec = next(
            (
                found
                for finder in list(sys.meta_path)
                if finder is not self and hasattr(finder, "find_spec")
                for found in [finder.find_spec(name, path, target)]
                if found is not None
            ),
            None,
        )
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            if self in sys.meta_path:  # one shot
                sys.meta_path.remove(self)
            exec_module(module)
            register_custom_objects()

        spec.loader.exec_module = exec_then_register
        return spec


def register_when_keras_loads() -> None:
    if "keras" in sys.modules:
        register_custom_objects()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())
