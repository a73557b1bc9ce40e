"""affect-keras: Keras 3 transfer learning for facial-expression recognition."""

__version__ = "0.1.0"
