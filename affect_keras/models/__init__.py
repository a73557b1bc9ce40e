"""Backbones, preprocessing, augmentation and heads, assembled into models that take raw images."""

# how a model is put together (`build.build_model`): "core", an inference model wrapped by the training
# model; "chain", one model with the augmentation block inside, as runs made before that split were built
LAYOUTS = ("core", "chain")
