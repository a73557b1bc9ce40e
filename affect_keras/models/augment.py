"""Augmentation presets from keras core preprocessing layers (not keras-cv: its development stopped).

They act on 0-255 float images and only in training: at inference every layer passes images through.
`basic` is the small-image recipe (mirror and shift a few pixels): the cheapest that curbs overfitting,
which matters when training runs on a CPU. `light` adds rotation, zoom, contrast and brightness;
`strong` adds RandAugment on top.
"""

from __future__ import annotations

PRESETS = ("none", "basic", "light", "strong")


def augmentation(preset: str, seed: int | None = None) -> keras.Sequential | None:
    """The augmentation block of a preset, or None for "none"."""
    import keras

    layers = keras.layers
    if preset == "none":
        return None
    if preset == "basic":
        return keras.Sequential([layers.RandomFlip("horizontal", seed=seed),
                                 layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed)],
                                name="augmentation")
    light = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="reflect", seed=seed),
        layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed),
        layers.RandomContrast(0.2, value_range=(0, 255), seed=seed),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed),
    ]
    if preset == "light":
        return keras.Sequential(light, name="augmentation")
    if preset == "strong":
        return keras.Sequential(
            light + [layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, seed=seed)],
            name="augmentation")
    raise ValueError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(PRESETS)}")
