"""affect-keras: Keras 3 transfer learning for facial-expression recognition."""

import os

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU instruction sets) come before every command's first
# useful line; level 1 drops INFO only, so TensorFlow's warnings and errors still show. A value the user
# set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"
