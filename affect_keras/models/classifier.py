"""The trained model as one object: `ExpressionClassifier`, a keras.Model that describes itself.

It maps raw uint8 faces to its heads' outputs (expression probabilities over `class_names`, valence and
arousal, polarity), with the backbone's preprocessing inside, and carries what every consumer needs in its
config: backbone, stem, input size, class names and label scheme, task, head, preprocessing, the face
framing its training faces had, and the affect-keras version that wrote it. `keras.saving.load_model`
returns it from a run's `best.keras`, an exported `.keras` or (through `from_preset`) a preset, after
`import affect_keras`.

Training wraps it (`models.build.training_model`): augmentation, then the classifier; the weights are the
classifier's, and the checkpoints hold the classifier alone.
"""

from __future__ import annotations

from pathlib import Path

import keras

from affect_keras import __version__
from affect_keras.tasks import EXPRESSION, get_task
from affect_keras.heads import HEADS
from affect_keras.models import POOLINGS
from affect_keras.models.backbones import build_backbone, get_backbone
from affect_keras.models.preprocessing import BackbonePreprocessing

BACKBONE_LAYER = "backbone"
POOL_LAYER = "head_pool"


@keras.saving.register_keras_serializable(package="affect_keras")
class ProbabilityTemperature(keras.layers.Layer):
    """Calibrated probabilities: softmax(log p / T) (temperature scaling, Guo et al. 2017, applied to the
    probabilities: the same as dividing the logits by T). No weights; the most probable class never changes.

    Args:
        temperature: T > 0.
    """

    def __init__(self, temperature: float, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def call(self, probabilities):
        logits = keras.ops.log(keras.ops.clip(keras.ops.cast(probabilities, "float32"), 1e-12, 1.0))
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="affect_keras")
class ExpressionClassifier(keras.Model):
    """A facial-expression model on a backbone: uint8 faces in, its heads' outputs out.

    Args:
        backbone: a name from `affect_keras.models.backbones.BACKBONES`.
        class_names: the expression classes, in output order.
        image_size: side of the square uint8 input; None: the backbone's default.
        stem: the backbone's stem (ResNet18/34: "imagenet" or "small"); None: the backbone's default for
            the size (the small one for from-scratch faces of 64 px or less).
        task: a name from `affect_keras.tasks.TASKS`: which heads the model has.
        label_scheme: the label scheme of the training data (`affect_keras.labels.SCHEMES`), for consumers.
        pooling: how the feature map becomes a vector (`affect_keras.models.POOLINGS`).
        dense: sizes of the head's hidden dense layers, in order (empty: straight to the outputs).
        dropout: dropout before each dense layer and the outputs.
        head_batch_norm: batch normalisation after each hidden dense layer.
        l2: L2 penalty on the head's kernels.
        pretrained: the backbone starts from pretrained weights: it is called in inference mode, so its
            BatchNorm statistics never move (also when its top is fine-tuned).
        framing: how the training faces were cut from their photos (`data.faces.Framing` as a dict); what
            predict cuts faces with by default.
        temperature: the calibration temperature T of the expression probabilities (softmax(log p / T),
            fitted on validation data: `affect_keras.calibration`); 1.0: as trained.
        preprocessing: the `BackbonePreprocessing` mode; None: the backbone's own.
        version: the affect-keras version that wrote the model (set when it is built).

    Examples:
        >>> import affect_keras, keras, numpy as np
        >>> model = affect_keras.ExpressionClassifier("resnet18", ["Neutral", "Happy", "Sad"], image_size=48,
        ...                                           dense=[])
        >>> model.predict(np.zeros((1, 48, 48, 3), "uint8"), verbose=0).shape
        (1, 3)
        >>> model.save("model.keras")
        >>> keras.saving.load_model("model.keras").class_names
        ['Neutral', 'Happy', 'Sad']
    """

    def __init__(
        self,
        backbone: str,
        class_names: list[str],
        image_size: int | None = None,
        stem: str | None = None,
        task: str = "expression",
        label_scheme: str = "",
        pooling: str = "avg",
        dense: list[int] = (256,),
        dropout: float = 0.3,
        head_batch_norm: bool = True,
        l2: float = 1e-4,
        pretrained: bool = False,
        framing: dict | None = None,
        preprocessing: str | None = None,
        version: str | None = None,
        temperature: float = 1.0,
        **kwargs,
    ):
        spec = get_backbone(backbone)
        image_size = int(image_size or spec.default_size)
        stem = stem or spec.default_stem(None if not pretrained else "imagenet", image_size)
        class_names = [str(name) for name in class_names]
        heads = get_task(task).heads
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        preprocessing = preprocessing or spec.preprocessing
        shape = (image_size, image_size, 3)

        # === Layers ===
        net = build_backbone(spec.name, shape, None, stem)
        net.name = BACKBONE_LAYER
        self.backbone = net
        self.preprocessor = BackbonePreprocessing(preprocessing, name="preprocessing")

        # === Functional Model ===
        inputs = keras.Input(shape, dtype="uint8", name="image")
        x = self.preprocessor(keras.layers.Rescaling(1.0, name="to_float")(inputs))
        x = net(x, training=False) if pretrained else net(x)
        outputs = _heads(
            _hidden(x, pooling, list(dense), dropout, head_batch_norm, l2), class_names, l2, heads, float(temperature)
        )
        kwargs.setdefault("name", f"affect_{spec.name}")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.backbone_name = spec.name
        self.class_names = class_names
        self.image_size = image_size
        self.stem = stem
        self.task = task
        self.label_scheme = label_scheme
        self.pooling = pooling
        self.dense = [int(d) for d in dense]
        self.dropout = float(dropout)
        self.head_batch_norm = bool(head_batch_norm)
        self.l2 = float(l2)
        self.pretrained = bool(pretrained)
        self.framing = dict(framing) if framing else None
        self.preprocessing = preprocessing
        self.version = version or __version__
        self.temperature = float(temperature)

    @property
    def heads(self) -> tuple[str, ...]:
        """The output heads, in output order (`affect_keras.heads.HEADS`)."""
        return get_task(self.task).heads

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": self.backbone_name,
            "class_names": list(self.class_names),
            "image_size": self.image_size,
            "stem": self.stem,
            "task": self.task,
            "label_scheme": self.label_scheme,
            "pooling": self.pooling,
            "dense": list(self.dense),
            "dropout": self.dropout,
            "head_batch_norm": self.head_batch_norm,
            "l2": self.l2,
            "pretrained": self.pretrained,
            "framing": self.framing,
            "preprocessing": self.preprocessing,
            "version": self.version,
            "temperature": self.temperature,
        }

    def with_temperature(self, temperature: float) -> "ExpressionClassifier":
        """The same classifier (its weights copied) with its expression probabilities calibrated by
        `temperature` (`affect_keras.calibration.fit_temperature`)."""
        calibrated = type(self).from_config({**self.get_config(), "temperature": float(temperature)})
        calibrated.set_weights(self.get_weights())
        return calibrated

    def compile(self, optimizer="auto", loss="auto", metrics="auto", loss_weights="auto", **kwargs):
        """keras's compile, with each "auto" taken from the heads: Adam at 1e-3, each head's default loss
        and metrics, equal loss weights."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = per_head(self.heads, lambda head: keras.losses.get({"class_name": head.loss, "config": {}}))
        if metrics == "auto":
            metrics = per_head(self.heads, lambda head: head.metrics())
        if loss_weights == "auto":
            loss_weights = None
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights, **kwargs)

    # keras-hub's preset contract; the files and checks live in `models.presets`
    @classmethod
    def from_preset(cls, name_or_dir: str | Path) -> "ExpressionClassifier":
        """The classifier of a preset: a shipped preset's name or a preset directory (every file checked
        against its sha256 first). Its metadata: `affect_keras.models.presets.load_metadata`.

        Examples:
            >>> model = ExpressionClassifier.from_preset("ferplus_resnet18_48")
            >>> model.class_names[int(model.predict(faces).argmax(-1)[0])]
        """
        from affect_keras.models.presets import resolve, verify

        path = resolve(name_or_dir)
        verify(path)
        return cls.from_checked_preset(path)

    @classmethod
    def from_checked_preset(cls, path: Path) -> "ExpressionClassifier":
        """The classifier of a preset folder whose files `presets.verify` has checked (the loader's way: it
        reads sha256.json once for the engine choice and the check)."""
        from affect_keras.models.presets import CONFIG, WEIGHTS, PresetError, read_json

        config = read_json(path / CONFIG)
        if config.get("registered_name") != f"affect_keras>{cls.__name__}":
            raise PresetError(
                f"preset {path}: {CONFIG} holds a {str(config.get('class_name'))[:60]}, not an "
                f"affect-keras {cls.__name__}"
            )
        try:
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        except (TypeError, ValueError, KeyError) as error:
            raise PresetError(
                f"preset {path}: {CONFIG} does not build a classifier ({str(error).splitlines()[0][:200]})"
            ) from None
        try:
            model.load_weights(path / WEIGHTS)  # float16 values are cast to the variables' float32
        except (OSError, ValueError, KeyError) as error:
            raise PresetError(
                f"preset {path}: {path / WEIGHTS} is not the weights of this model (a keras "
                f".weights.h5 file): {str(error).splitlines()[0][:200]}"
            ) from None
        return model

    def save_to_preset(self, preset_dir, dtype: str = "float16", metadata: dict | None = None, card: str = ""):
        """Write the classifier as a preset directory (which must be new or empty): its config, its
        weights stored as `dtype`, metadata.json (the model's description plus `metadata`), the model card
        `card`, and sha256.json. Returns the directory.

        Examples:
            >>> model.save_to_preset("presets/my_model", metadata={"training": {"data_terms": "..."}})
        """
        from affect_keras.models.presets import write_preset

        return write_preset(self, preset_dir, dtype, metadata or {}, card)


def per_head(heads: tuple[str, ...], make):
    """`make(head)` of each head (`HEADS`) as compile takes it: the value alone for the expression
    classifier's single output, else {head name: value}."""
    if tuple(heads) == (EXPRESSION,):
        return make(HEADS[EXPRESSION])
    return {name: make(HEADS[name]) for name in heads}


def _hidden(features, pooling: str, dense: list[int], dropout: float, batch_norm: bool, l2: float):
    """Pooling, then the hidden dense layers (each with dropout before and batch norm after), then the
    dropout before the output layers."""
    layers = keras.layers
    x = getattr(layers, POOLINGS[pooling])(name=POOL_LAYER)(features)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for k, units in enumerate(dense, start=1):
        if dropout:
            x = layers.Dropout(dropout, name=f"head_dropout{k}")(x)
        x = layers.Dense(units, use_bias=not batch_norm, kernel_regularizer=regularizer, name=f"head_dense{k}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"head_bn{k}")(x)
        x = layers.Activation("relu", name=f"head_relu{k}")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout_out")(x)
    return x


def _heads(features, class_names: list[str], l2: float, heads: tuple[str, ...], temperature: float = 1.0):
    """The heads' outputs on the pooled features: the class probabilities alone for the expression
    classifier, else {head: tensor}. Every output is float32 (mixed precision computes the rest in half).
    A temperature other than 1 calibrates the expression probabilities (`ProbabilityTemperature`)."""
    regularizer = keras.regularizers.L2(l2) if l2 else None
    outputs, finish = {}, {}
    for name in sorted(heads, key=lambda h: HEADS[h].build_order):  # the order checkpoints' layers have
        HEADS[name].build(features, class_names, regularizer, outputs, finish)
    for name, make in finish.items():
        outputs[name] = make(outputs[name])
    if temperature != 1.0 and EXPRESSION in outputs:
        outputs[EXPRESSION] = ProbabilityTemperature(temperature, name="temperature")(outputs[EXPRESSION])
    if tuple(heads) == (EXPRESSION,):
        return outputs[EXPRESSION]
    return {name: outputs[name] for name in heads}


def from_preset(name_or_dir: str | Path) -> ExpressionClassifier:
    """`ExpressionClassifier.from_preset`: the classifier of a preset.

    Args:
        name_or_dir: a shipped preset's name (`ferplus_resnet18_48`) or a preset folder (`save_preset`);
            its files are checked against its sha256.json first.

    Returns:
        The `ExpressionClassifier`, with the preset's weights, class names, image size and framing.

    Examples:
        >>> import affect_keras
        >>> model = affect_keras.from_preset("ferplus_resnet18_48")
        >>> model.image_size, model.class_names[:3], model.framing["crop"]
        (48, ['Neutral', 'Happy', 'Sad'], 'box')
    """
    return ExpressionClassifier.from_preset(name_or_dir)
