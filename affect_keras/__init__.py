"""affect-keras: Keras 3 transfer learning for facial-expression recognition."""

import os

from affect_keras._registration import register_when_keras_loads

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU instruction sets) come before every command's first
# useful line; level 1 drops INFO only, so TensorFlow's warnings and errors still show. A value the user
# set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"

# Every layer, loss and metric a saved model refers to is known to keras.saving.load_model after
# `import affect_keras`, whether keras was imported before or after (without importing keras here: the
# CLIs' --help stays a tenth of a second instead of four).
register_when_keras_loads()
