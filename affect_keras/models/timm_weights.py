"""ImageNet ResNet18 / ResNet34 from timm's checkpoints on the Hugging Face hub, read without torch.

keras.applications has no ResNet18/34, so `--weights imagenet` for them takes timm's safetensors files
(for example `resnet18.a1_in1k`; `*.tv_in1k` are the torchvision originals). The file is fetched with
keras's own `keras.utils.get_file` into `$KERAS_HOME/models/<checkpoint>.safetensors` and cached there,
read with `safetensors.numpy`, and mapped by name onto `affect_keras.models.resnet.ResNet`, whose layout
and padding are timm's. Offline, place the file there by hand; the error says which and from where.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: keras is imported where a model is built
    import keras

# the checkpoints offered per depth; the first is the default (timm's own default tag for the name)
CHECKPOINTS = {
    "resnet18": ("resnet18.a1_in1k", "resnet18.tv_in1k", "resnet18.a2_in1k", "resnet18.a3_in1k"),
    "resnet34": ("resnet34.a1_in1k", "resnet34.tv_in1k", "resnet34.a2_in1k", "resnet34.a3_in1k"),
}
HUB = "https://huggingface.co/timm/{tag}/resolve/main/model.safetensors"
# timm's pretrained_cfg gives every checkpoint above ImageNet mean/std preprocessing ("torch" mode)
PREPROCESSING = "torch"


def checkpoint_file(tag: str) -> str:
    return f"{tag}.safetensors"


def fetch(tag: str, cache_dir: Path) -> Path:
    """The checkpoint's local path: downloaded once by keras.utils.get_file, then read from the cache."""
    origin = HUB.format(tag=tag)
    try:  # get_file returns a cached file without fetching
        import keras

        return Path(
            keras.utils.get_file(checkpoint_file(tag), origin, cache_subdir="models", cache_dir=str(cache_dir.parent))
        )
    except Exception as error:  # keras raises a bare Exception on a failed fetch
        raise RuntimeError(
            f"ImageNet weights {tag} could not be downloaded ({type(error).__name__}) and are not cached: "
            f"place {checkpoint_file(tag)} in {cache_dir} (or set KERAS_HOME); it is {origin} renamed, or "
            f"use --weights none"
        ) from None


def _keras_to_timm(depth: str) -> dict[str, str]:
    """keras layer name -> timm parameter prefix, for every Conv2D and BatchNormalization."""
    from affect_keras.models.resnet import LAYERS

    names = {"stem_conv": "conv1", "stem_bn": "bn1"}
    for stage, blocks in enumerate(LAYERS[depth], start=1):
        for block in range(1, blocks + 1):
            ours, theirs = f"stage{stage}_block{block}", f"layer{stage}.{block - 1}"
            for k in (1, 2):
                names[f"{ours}_{k}_conv"] = f"{theirs}.conv{k}"
                names[f"{ours}_{k}_bn"] = f"{theirs}.bn{k}"
            names[f"{ours}_shortcut_conv"] = f"{theirs}.downsample.0"
            names[f"{ours}_shortcut_bn"] = f"{theirs}.downsample.1"
    return names


def load_timm_resnet(net: keras.Model, path: Path) -> int:
    """Copy a timm ResNet state dict (safetensors) onto `net` (built with the imagenet stem).

    Convolution kernels go from torch's (out, in, h, w) to keras's (h, w, in, out); BatchNorm takes
    weight, bias, running_mean, running_var as gamma, beta, moving mean and variance. Every Conv2D and
    BatchNormalization of `net` must be matched, and every tensor of the file used but the classifier
    (`fc.*`) and BatchNorm's step counters. Returns the number of tensors copied.
    """
    import keras
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
    used, names = set(), _keras_to_timm(net.name)
    for layer in net.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)):
            continue
        prefix = names.get(layer.name)
        if prefix is None:
            raise ValueError(f"layer {layer.name} of {net.name} has no timm counterpart (small stem?)")
        if isinstance(layer, keras.layers.Conv2D):
            keys = [f"{prefix}.weight"]
        else:
            keys = [f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
        missing = [k for k in keys if k not in tensors]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: not a timm {net.name} checkpoint")
        values = [tensors[k] for k in keys]
        if isinstance(layer, keras.layers.Conv2D):
            values = [np.transpose(values[0], (2, 3, 1, 0))]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(
                f"{path}: {prefix} has shapes {[v.shape for v in values]}, {layer.name} needs "
                f"{expected}: not a timm {net.name} checkpoint"
            )
        layer.set_weights(values)
        used.update(keys)
    unused = [k for k in tensors if k not in used and not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    if unused:
        raise ValueError(f"{path} has tensors {net.name} does not use: {', '.join(unused[:5])}")
    return len(used)
