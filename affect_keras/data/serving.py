"""Which input pipeline feeds `fit`: `FaceBatches` itself (a keras PyDataset, any backend) or its batches
through tf.data (`data.tfdata`, TensorFlow only). Above both, so that neither imports the other's user."""

from __future__ import annotations

import keras

from affect_keras.data.loader import FaceBatches
from affect_keras.options import OptionError


def resolve_pipeline(name: str) -> str:
    """What "auto" stands for on this backend; refuses tf.data elsewhere."""
    tensorflow = keras.backend.backend() == "tensorflow"
    if name == "auto":
        return "tf.data" if tensorflow else "pydataset"
    if name == "tf.data" and not tensorflow:
        raise OptionError(
            "input_pipeline",
            f"tf.data needs the TensorFlow backend (this is "
            f"{keras.backend.backend()}); use --input-pipeline pydataset or auto",
        )
    return name


def serve(faces: FaceBatches, pipeline: str):
    """What `fit` reads for `faces` on `pipeline` ("tf.data" or "pydataset"); `EpochOrder(faces)` drives
    either."""
    if pipeline == "tf.data":
        from affect_keras.data.tfdata import image_batches  # TensorFlow only when this path is taken

        return image_batches(faces)
    return faces
