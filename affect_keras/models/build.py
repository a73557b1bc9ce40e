"""The classifier in training: its starting weights, the training model that wraps it, and fine-tuning.

The *training model* is uint8 image -> augmentation (training only) -> the `ExpressionClassifier`. It is
what fit trains; the classifier's layers and weights are shared, not copied, and the checkpoints hold the
classifier alone (`classifier_of`).
"""

from __future__ import annotations


import keras

from affect_keras.models.augment import augmentation
from affect_keras.models.backbones import build_backbone
from affect_keras.models.classifier import BACKBONE_LAYER, ExpressionClassifier
from affect_keras.options import OptionError


def training_model(classifier: ExpressionClassifier, augment: str = "light", seed: int | None = None) -> keras.Model:
    """uint8 images -> the `augment` block (`models.augment.AUGMENTATIONS`) -> `classifier`. Always a model
    of its own, also without augmentation: it is what gets compiled, so the classifier (what checkpoints
    hold) never carries the optimizer's state."""
    from affect_keras.models.preprocessing import ToImage

    block = augmentation(augment, seed)
    inputs = keras.Input((classifier.image_size, classifier.image_size, 3), dtype="uint8", name="image")
    x = (
        inputs
        if block is None
        else ToImage(name="to_image")(block(keras.layers.Rescaling(1.0, name="to_float")(inputs)))
    )
    return keras.Model(inputs, classifier(x), name=f"train_{classifier.name}")


def classifier_of(model: keras.Model) -> ExpressionClassifier:
    """The classifier inside a training model (or the model itself)."""
    if isinstance(model, ExpressionClassifier):
        return model
    return next(layer for layer in model.layers if isinstance(layer, ExpressionClassifier))


def backbone_of(model: keras.Model) -> keras.Model:
    return classifier_of(model).get_layer(BACKBONE_LAYER)


def load_pretrained(classifier: ExpressionClassifier, weights: str, checkpoint: str | None = None) -> None:
    """Start the classifier's backbone from `weights`: "imagenet" (the `checkpoint`, or the backbone's
    default), or another classifier's backbone: a preset (shipped name or folder), a run directory or a
    `.keras` file (`models.loading`), which must have the same backbone and stem."""
    if weights == "imagenet":
        pretrained = build_backbone(
            classifier.backbone_name,
            (classifier.image_size, classifier.image_size, 3),
            "imagenet",
            classifier.stem,
            checkpoint,
        )
        classifier.backbone.set_weights(pretrained.get_weights())
        return
    from affect_keras.models.loading import load_classifier

    source = load_classifier(weights, option="weights")
    if source.backbone_name != classifier.backbone_name:
        raise OptionError(
            "weights", f"{weights} holds a {source.backbone_name} backbone, not {classifier.backbone_name}"
        )
    if source.stem != classifier.stem:
        raise OptionError("stem", f"{classifier.stem}: the backbone in --weights {weights} has the {source.stem} stem")
    classifier.backbone.set_weights(source.backbone.get_weights())  # fully convolutional: any input size


def unfreeze(model: keras.Model, top: int | list[str], apply: bool = True) -> list[str]:
    """Make the top of the backbone trainable for fine-tuning; every BatchNormalization stays frozen.

    Args:
        top: the number of top layers that hold weights (at most the backbone's), or names (prefixes) of
            blocks such as "block5" (VGG16) or "stage4" (ResNet18).
        apply: False only checks `top` (OptionError naming unfreeze) and changes nothing.

    Returns the names of the layers made trainable. The model must be compiled again afterwards.
    """
    net = backbone_of(model)
    weighted = [layer for layer in net.layers if layer.weights]
    if isinstance(top, int):
        if top > len(weighted):
            raise OptionError("unfreeze", f"{top}: the {net.name} backbone has {len(weighted)} layers with weights")
        chosen = {layer.name for layer in weighted[max(0, len(weighted) - top) :]} if top > 0 else set()
    else:
        chosen = {layer.name for layer in weighted if any(layer.name.startswith(p) for p in top)}
        if not chosen:
            raise OptionError("unfreeze", f"{','.join(top)} names no layer of {net.name}")
    if not apply:
        return sorted(chosen)
    net.trainable = True
    for layer in net.layers:
        layer.trainable = layer.name in chosen and not isinstance(layer, keras.layers.BatchNormalization)
    return [layer.name for layer in net.layers if layer.trainable and layer.weights]
