"""Augmentation presets from keras core preprocessing layers (not keras-cv: its development stopped).

They act on 0-255 float images and only in training: at inference every layer passes images through.
`basic` is the small-image recipe (mirror and shift a few pixels): the cheapest that curbs overfitting,
which matters when training runs on a CPU. `light` adds rotation, zoom, contrast and brightness;
`strong` adds RandAugment on top.
"""

from __future__ import annotations


def _basic(seed):
    """Mirror and shift up to 10 %: the FER+ recipe's augmentation."""
    import keras

    layers = keras.layers
    return [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
    ]


def _light(seed):
    """Mirror, small rotation, zoom and shift, contrast and brightness."""
    import keras

    layers = keras.layers
    return [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="reflect", seed=seed),
        layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
        layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
    ]


def _strong(seed):
    """light, then RandAugment (two operations at half strength)."""
    import keras

    return _light(seed) + [keras.layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=seed)]


# the augmentation registry: --augment name -> the layers of its block (None: no block)
AUGMENTATIONS = {"none": None, "basic": _basic, "light": _light, "strong": _strong}


def augmentation(preset: str, seed: int | None = None):
    """The augmentation block (a keras.Sequential named "augmentation") of a preset, or None for "none"."""
    if preset not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(AUGMENTATIONS)}")
    if AUGMENTATIONS[preset] is None:
        return None
    import keras

    layers = AUGMENTATIONS[preset](seed)
    if keras.backend.backend() == "jax":
        # keras marks the geometric layers (RandomTranslation, RandomRotation, RandomZoom) supports_jit =
        # False because TensorFlow's transform kernel has no XLA version, and a model holding one is then
        # never compiled. Under JAX that means every op of every step runs eagerly: the FER+ recipe ran
        # at 5-7 s a step. Their JAX implementation (jax.scipy map_coordinates) traces under jax.jit.
        for layer in layers:
            for part in layer._flatten_layers():  # RandAugment holds such layers inside
                part.supports_jit = True
    return keras.Sequential(layers, name="augmentation")
