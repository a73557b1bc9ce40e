"""affect-keras: Keras 3 transfer learning for facial-expression recognition.

The public API, one name per stage (as `keras_hub.models.*`), each imported when first used so that
`import affect_keras` stays light:

    affect_keras.prepare(affect_keras.PrepareConfig(...))   # a dataset -> prepared class folders
    affect_keras.train(affect_keras.TrainConfig(...))       # -> a run directory
    affect_keras.evaluate(affect_keras.EvaluateConfig(...)) # -> report.json, pictures, model card
    affect_keras.export(run, ["saved_model", ...])          # -> SavedModel, .keras, TFLite, ONNX
    affect_keras.predict("photo.jpg")                       # -> each face's probabilities
    affect_keras.predict_video("clip.mp4")                  # -> each person's smoothed timeline
    affect_keras.from_preset("ferplus_resnet18_48")         # -> an ExpressionClassifier
    affect_keras.load_model("models/r18")                   # any run, preset, .keras, SavedModel, .tflite, .onnx
"""

import os

from affect_keras._registration import register_when_keras_loads

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU instruction sets) come before every command's first
# useful line; level 1 drops INFO only, so TensorFlow's warnings and errors still show. A value the user
# set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.3.0"

# public name -> (module, attribute): imported on first use (PEP 562)
_PUBLIC = {
    "prepare": ("affect_keras.data.prepare", "prepare"),
    "PrepareConfig": ("affect_keras.data.prepare", "PrepareConfig"),
    "train": ("affect_keras.training.run", "train"),
    "TrainConfig": ("affect_keras.training.config", "TrainConfig"),
    "evaluate": ("affect_keras.evaluation.report", "evaluate"),
    "EvaluateConfig": ("affect_keras.evaluation.config", "EvaluateConfig"),
    "format_report": ("affect_keras.evaluation.report", "format_report"),
    "run_study": ("affect_keras.training.study", "run_study"),
    "export": ("affect_keras.models.export", "export"),
    "predict": ("affect_keras.deploy.analyse", "predict"),
    "predict_video": ("affect_keras.deploy.video", "predict_video"),
    "load_model": ("affect_keras.models.loading", "load"),
    "ExpressionClassifier": ("affect_keras.models.classifier", "ExpressionClassifier"),
    "from_preset": ("affect_keras.models.classifier", "from_preset"),
    "save_preset": ("affect_keras.deploy.presets", "save_preset"),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'affect_keras' has no attribute {name!r}")
    import importlib

    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


# Every layer, loss and metric a saved model refers to is known to keras.saving.load_model after
# `import affect_keras`, whether keras was imported before or after (without importing keras here: the
# CLIs' --help stays a tenth of a second instead of four).
register_when_keras_loads()
