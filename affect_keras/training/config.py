"""A training run's settings: `TrainConfig`, what train.py, a --config file and config.yaml hold.

Validating and listing the settings imports no keras (so `train.py --help` and a mistyped flag answer at
once); `resolve()`, which looks at the backend and at a saved backbone, imports what it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import logging

from affect_keras import __version__
from affect_keras.data.batching import BATCH_SAMPLINGS, MIXES, PIPELINES, TARGETS
from affect_keras.tasks import TASKS, get_task
from affect_keras.models import POOLINGS
from affect_keras.models.augment import AUGMENTATIONS
from affect_keras.models.backbones import BACKBONES, get_backbone
from affect_keras.models.loading import KINDS, kind_of
from affect_keras.models.export import FORMATS as EXPORT_FORMATS
from affect_keras.options import FIRST_RELEASE, OptionError, before_first_release, check, check_fields
from affect_keras.options import setting, version_check, version_tuple
from affect_keras.training import class_weights as cw
from affect_keras.training.distribute import DISTRIBUTIONS
from affect_keras.training.losses import LOSSES, VA_LOSSES
from affect_keras.training.optim import OPTIMIZERS, SCHEDULES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUTO_VIEWS = 4  # augmented views per training image cached by default when augmentation is on
GROUPS = {  # the topics of train.py --help, in order: {group: (title, description)}
    "input": ("input: the prepared data and its batches", None),
    "model": ("model", None),
    "task": ("task: what the model predicts", None),
    "loss": ("loss and class imbalance", None),
    "optimisation": ("optimisation", None),
    "schedule": ("schedule: phase 1 trains the head on the frozen backbone, phase 2 fine-tunes its top", None),
    "cache": (
        "feature cache (frozen backbone)",
        "With a frozen backbone (--weights imagenet or PATH) phase 1 trains the head on backbone features "
        "computed once per split and stored under --cache-dir, keyed by backbone, weights, size, pooling, "
        "manifest, augmentation, views and seed; a later run with another head, loss or optimiser reuses "
        "them without running the backbone. What it gives up: augmentation becomes --cache-views fixed "
        "draws per image (epoch e trains on view e mod K) instead of a fresh draw every epoch, and --mix "
        "is unavailable. Phase 2 fine-tunes uncached, from the same full model.",
    ),
    "run": ("run", None),
}


log = logging.getLogger(__name__)


def _usable_weights(weights: str) -> bool:
    kind = kind_of(weights) if weights not in ("imagenet", "none") else None
    return weights in ("imagenet", "none") or (kind is not None and KINDS[kind].keras)


@dataclass
class TrainConfig:
    """Every setting of one training run: `train(config)` runs it, train.py builds its flags from these
    fields (their help, group, choices and checks are the fields' metadata: `options.setting`), and the run
    directory keeps it as `config.yaml`, resolved (every "auto" filled in) and with the affect-keras
    `version` that wrote it.

    Args (the main ones; every field's help is what train.py's `--help` lists):
        data: a folder written by prepare_dataset.py.
        run_dir: where the run is written (and resumed from).
        backbone, weights: a `models.backbones.BACKBONES` name and "imagenet", "none", or a trained
            classifier whose backbone to start from: a preset's name or folder, a run directory, a .keras file.
        epochs, finetune_epochs, unfreeze: the frozen phase, then the fine-tuned one.
        class_weights: "none", "auto" or a file of class: weight.

    Examples:
        `affect_keras.train` runs it; weights: the shipped preset's backbone:

        >>> import affect_keras
        >>> config = affect_keras.TrainConfig(data="data/s32", run_dir="models/s32", backbone="resnet18",
        ...                                   weights="ferplus_resnet18_48", image_size=32, epochs=1)
        >>> config.class_weights, config.finetune_epochs, config.loss
        ('auto', 0, 'crossentropy')
    """

    # ---- input ----
    data: str = setting(group="input", help="prepared dataset folder (required)")
    run_dir: str = setting(
        "",
        group="run",
        identity=False,  # a moved run folder continues where it lies
        help="default: models/<backbone>-<data folder name>; the same command again continues an interrupted run there",
    )
    image_size: int = setting(
        0,
        group="input",
        help="input side (0: the backbone's default)",
        check=(lambda v: v == 0 or v >= 32, "must be 0 (backbone default) or >= 32"),
    )
    batch_size: int = setting(
        32,
        group="input",
        help="images per step: the global batch, split over the replicas under --distribute",
        check=(lambda v: v >= 1, "must be >= 1"),
    )
    input_pipeline: str = setting(
        "auto",
        group="input",
        choices=PIPELINES,
        identity=False,
        help="tf.data: parallel JPEG decoding in TensorFlow (TensorFlow backend); pydataset: FaceBatches on "
        "Python threads (any backend); auto: tf.data where it runs. Both give the same batches for a "
        "seed and epoch",
    )
    targets: str = setting(
        "majority",
        group="input",
        choices=TARGETS,
        help="majority: one-hot labels | votes: FER+ vote distributions as soft targets",
    )
    sampling: str = setting(
        "none",
        group="input",
        choices=BATCH_SAMPLINGS,
        help="oversample: class-balanced batches (draws with probability 1 / class count); upsample: every "
        "image once plus the smaller classes repeated up to the largest; undersample: every class drawn "
        "down to the smallest, anew each epoch. Each replaces class weights",
    )
    augment: str = setting(
        "light",
        group="input",
        choices=AUGMENTATIONS,
        help="augmentation preset of the training model (models/augment.py)",
    )
    mix: str = setting("none", group="input", choices=MIXES, help="MixUp or CutMix on training batches")
    mix_alpha: float = setting(
        0.2, group="input", help="Beta(alpha, alpha) mixing ratio", check=(lambda v: v > 0, "must be > 0")
    )
    # ---- model ----
    backbone: str = setting("vgg16", group="model", choices=BACKBONES, help="the pretrained network under the head")
    weights: str = setting(
        "imagenet",
        group="model",
        check=(
            _usable_weights,
            "must be imagenet, none, a preset (shipped name or folder), a run directory or a .keras file",
        ),
        help="imagenet | none (train from scratch) | a trained classifier whose backbone to start from, with "
        "its own stem: a preset (a shipped name such as ferplus_resnet18_48, or a preset folder), a run "
        "directory or a .keras file",
    )
    imagenet_checkpoint: str = setting(
        "",
        group="model",
        help="with --weights imagenet, which checkpoint (resnet18/34: a timm tag such as "
        "resnet18.a1_in1k, the default, or resnet18.tv_in1k; empty: the backbone's default)",
    )
    stem: str = setting(
        "auto",
        group="model",
        help="resnet18/34: imagenet (7x7/2 + max-pool, needed by ImageNet weights) or small (3x3/1, "
        "for faces of 64 px or less from scratch); auto picks by weights and size",
    )
    pooling: str = setting(
        "avg", group="model", choices=POOLINGS, help="how the backbone's feature map becomes the head's input"
    )
    dense: list[int] = setting(
        [256],
        group="model",
        metavar="SIZES",
        check=(lambda v: all(d >= 1 for d in v), "sizes must be >= 1"),
        help="hidden dense sizes of the head, comma-separated (empty: none)",
    )
    dropout: float = setting(
        0.3,
        group="model",
        help="dropout before each dense layer of the head",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    )
    head_batch_norm: bool = setting(True, group="model", help="no batch normalisation in the head")
    l2: float = setting(1e-4, group="model", help="L2 penalty on the head")
    # ---- task ----
    task: str = setting(
        "expression",
        group="task",
        choices=TASKS,
        help="; ".join(f"{name}: {spec.description}" for name, spec in TASKS.items()),
    )
    va_loss: str = setting(
        "ccc",
        group="task",
        choices=VA_LOSSES,
        help="va / multitask: ccc (1 - concordance correlation over the batch) or mse; faces "
        "without valence / arousal (FER+, folders, AffectNet's -2) are masked out",
    )
    va_weight: float = setting(
        1.0,
        group="task",
        help="multitask: weight of the V/A loss against the expression loss",
        check=(lambda v: v >= 0, "must be >= 0"),
    )
    # ---- loss ----
    class_weights: str = setting(
        "auto",
        group="loss",
        help="auto (inverse frequency, mean 1) | effective (effective number) | none | FILE",
        check=(
            lambda v: v in cw.METHODS or Path(v).is_file(),
            "must be auto, effective, none, or an existing YAML/JSON file",
        ),
    )
    class_weight_power: float = setting(
        1.0,
        group="loss",
        check=(lambda v: 0 < v <= 1, "must be in (0, 1]"),
        help="auto: weights proportional to count ** -power (1: inverse frequency; 0.25-0.5 temper it, for "
        "rare classes at less cost to overall accuracy)",
    )
    loss: str = setting(
        "crossentropy",
        group="loss",
        choices=LOSSES,
        help="crossentropy | focal (keras's focal loss: easy, mostly frequent-class examples count "
        "less) | logit-adjusted (Menon et al. 2021: trained on logits shifted by tau * log "
        "prior, so the model's own output is balanced across classes)",
    )
    logit_tau: float = setting(1.0, group="loss", help="logit-adjusted: tau", check=(lambda v: v > 0, "must be > 0"))
    focal_gamma: float = setting(2.0, group="loss", help="focal: gamma", check=(lambda v: v >= 0, "must be >= 0"))
    label_smoothing: float = setting(
        0.0,
        group="loss",
        help="share of each target spread over the classes",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    )
    # ---- optimisation ----
    optimizer: str = setting("adam", group="optimisation", choices=OPTIMIZERS, help="adam or sgd")
    lr: float = setting(
        1e-3, group="optimisation", help="learning rate of phase 1", check=(lambda v: v > 0, "must be > 0")
    )
    momentum: float = setting(0.9, group="optimisation", help="SGD momentum")
    nesterov: bool = setting(False, group="optimisation", help="SGD with Nesterov momentum")
    weight_decay: float = setting(0.0, group="optimisation", help="decoupled weight decay (0: none)")
    precision: str = setting("float32", group="optimisation", choices=PRECISIONS, help="keras dtype policy")
    # ---- schedule ----
    epochs: int = setting(
        10, group="schedule", help="phase 1: head on the frozen backbone", check=(lambda v: v >= 1, "must be >= 1")
    )
    schedule: str = setting(
        "constant",
        group="schedule",
        choices=SCHEDULES,
        help="learning-rate schedule of phase 1 (plateau: lowered when the monitor stalls)",
    )
    warmup_epochs: int = setting(0, group="schedule", help="cosine warm-up")
    step_every: int = setting(1000, group="schedule", help="step schedule: steps per decay")
    step_factor: float = setting(0.9, group="schedule", help="step schedule: factor")
    finetune_epochs: int = setting(
        0,
        group="schedule",
        help="phase 2: epochs with the top of the backbone unfrozen (0: none)",
        check=(lambda v: v >= 0, "must be >= 0"),
    )
    unfreeze: str = setting(
        "4",
        group="schedule",
        help="phase 2: top backbone layers to unfreeze: a number, or block names such as block5,stage4",
    )
    finetune_lr: float = setting(
        1e-5, group="schedule", help="phase 2: learning rate", check=(lambda v: v > 0, "must be > 0")
    )
    # ---- feature cache ----
    cache_views: int = setting(
        -1,
        group="cache",
        check=(lambda v: v >= -1, "must be -1 (auto), 0 (off) or a number of views"),
        help=f"augmented views stored per training image; 0: no cache, train as the backbone runs every "
        f"epoch; -1 (auto): 1 without augmentation, {AUTO_VIEWS} with it, 0 when the backbone trains or "
        f"--mix is on",
    )
    cache_dir: str = setting(
        "", group="cache", identity=False, help="where features are stored (empty: DATA/feature_cache)"
    )
    # ---- run ----
    monitor: str = setting(
        "auto",
        group="run",
        help="metric for the best checkpoint and early stopping; auto: val_accuracy, or "
        "val_expression_accuracy when the model has several heads, or val_loss for va",
    )
    patience: int = setting(0, group="run", help="early stopping (0: off)")
    seed: int = setting(
        0,
        group="run",
        help="fixes the initial weights, every epoch's order, augmentation and mixing",
        check=(lambda v: 0 <= v < 2**32, "must be in 0..2^32-1"),
    )
    distribute: str = setting(
        "none",
        group="run",
        choices=DISTRIBUTIONS,
        identity=False,  # --batch-size is global: no other result
        help="none | mirrored: this machine's devices (TensorFlow MirroredStrategy over its GPUs; on JAX "
        "keras.distribution.DataParallel over its devices: GPUs or a TPU). --batch-size is the global "
        "batch, split over the replicas",
    )
    calibrate: bool = setting(
        True,
        group="run",
        identity=False,  # the training is the same; the saved probabilities are calibrated
        help="no temperature scaling at the end: by default a temperature fitted on the validation split "
        "calibrates the saved models' expression probabilities (the predicted classes are unchanged)",
    )
    export: list[str] = setting(
        [],
        group="run",
        choices=EXPORT_FORMATS,
        metavar="FORMAT",
        help=f"export the finished model: {', '.join(EXPORT_FORMATS)} (see export.py)",
    )
    # the affect-keras version that wrote config.yaml (runs from 0.2.0 on continue in every later version)
    version: str = setting(__version__, group="run", identity=False, cli=False, check=version_check())

    def __post_init__(self):
        """Paths given as `Path` become text (the config is saved as YAML); every field's type, choices and
        check are checked here, as the CLI checks its flags: a bad value fails before anything is written."""
        check_fields(self)

    def validate(self) -> None:
        """OptionError naming the first setting that is wrong: each field's own choices and check, then the
        rules between settings."""
        check_fields(self)
        spec = get_backbone(self.backbone)
        check(
            [
                (
                    self.stem in ("auto", *spec.stems),
                    "stem",
                    f"must be auto or one of {', '.join(spec.stems)} for {self.backbone}",
                ),
                (
                    self.weights != "imagenet" or self.stem in ("auto", spec.stems[0]),
                    "stem",
                    f"{self.stem}: ImageNet weights need the {spec.stems[0]} stem",
                ),
                (
                    self.imagenet_checkpoint in ("", *spec.checkpoints),
                    "imagenet_checkpoint",
                    f"must be one of {', '.join(spec.checkpoints)} for {self.backbone}",
                ),
                (
                    self.finetune_epochs == 0 or self.weights != "none",
                    "finetune_epochs",
                    "fine-tunes the top of a pretrained backbone; with --weights none the whole backbone trains "
                    "from the first epoch, so add --epochs instead",
                ),
                (
                    self.cache_views <= 0 or self.weights != "none",
                    "cache_views",
                    "needs a frozen backbone (--weights imagenet or PATH): with --weights none the features change",
                ),
                (
                    self.cache_views <= 0 or self.mix == "none",
                    "cache_views",
                    "cannot be used with --mix: MixUp and CutMix mix images, not features; use --cache-views 0",
                ),
                (
                    self.mix == "none" or self.task == "expression",
                    "mix",
                    f"mixes expression targets only: use --mix none with --task {self.task}",
                ),
            ]
        )
        monitors = get_task(self.task).monitors()
        check(
            [
                (
                    self.monitor == "auto" or self.monitor in monitors,
                    "monitor",
                    f"must be auto or one of the metrics a --task {self.task} run logs: {', '.join(monitors)}",
                )
            ]
        )

    def recorded(self, saved: dict) -> dict:
        """The config.yaml of the run in `run_dir`, as written by affect-keras 0.2.0 or later; what an
        earlier version wrote (no version, or the pre-release numbering) is refused with how to start
        again, and what a newer version wrote is refused too."""
        version = version_tuple(saved.get("version")) if isinstance(saved.get("version"), str) else None
        if version is None or version < version_tuple(FIRST_RELEASE):  # recorded from this release on
            raise OptionError(
                "run_dir",
                before_first_release(
                    f"{self.run_dir} holds a run trained",
                    "its runs do not continue: train it again into a new --run-dir",
                ),
            )
        if version > version_tuple(__version__):
            raise OptionError(
                "run_dir",
                f"{self.run_dir} holds a run written by affect-keras {saved['version']}, "
                f"newer than this one ({__version__}); upgrade affect-keras to continue it",
            )
        return saved

    def differences(self, saved: dict) -> list[str]:
        """The settings (resolved) that differ from the run `saved` (`recorded`'s answer) describes, leaving
        out those that change no result (`NOT_IDENTITY`)."""
        return [
            key for key, value in asdict(self).items() if key not in NOT_IDENTITY and saved.get(key, _ABSENT) != value
        ]

    def resolve(self) -> None:
        """Fill in what "auto" and "" stand for, so the saved config says what the run used."""
        from affect_keras.data.serving import resolve_pipeline
        from affect_keras.models.loading import classifier_settings

        if self.sampling != "none" and self.class_weights != "none":
            log.warning(
                "sampling %s balances the classes, so class weights are off (class_weights none)", self.sampling
            )
            self.class_weights = "none"
        spec = get_backbone(self.backbone)
        self.run_dir = self.run_dir or str(Path("models") / f"{self.backbone}-{Path(self.data).resolve().name}")
        self.image_size = self.image_size or spec.default_size  # the size the run uses, not 0
        if self.weights == "imagenet":
            self.imagenet_checkpoint = self.imagenet_checkpoint or spec.checkpoints[0]
        elif self.weights != "none" and self.stem == "auto":  # a trained backbone keeps its stem (a --stem
            # that contradicts it is refused when the model is built)
            self.stem = classifier_settings(self.weights)["stem"]
        if self.stem == "auto":
            self.stem = spec.default_stem(None if self.weights == "none" else self.weights, self.image_size)
        if self.cache_views == -1:  # auto: cache whenever the backbone is frozen and nothing mixes images
            frozen = self.weights != "none" and self.mix == "none"
            self.cache_views = (1 if self.augment == "none" else AUTO_VIEWS) if frozen else 0
        self.input_pipeline = resolve_pipeline(self.input_pipeline)
        if self.monitor == "auto":
            self.monitor = get_task(self.task).default_monitor()

    @property
    def feature_cache_root(self) -> Path:
        """Where the feature cache's folders are (--cache-dir, by default DATA/feature_cache)."""
        return Path(self.cache_dir) if self.cache_dir else Path(self.data) / "feature_cache"

    @property
    def unfreeze_spec(self) -> int | list[str]:
        return int(self.unfreeze) if self.unfreeze.isdigit() else self.unfreeze.split(",")


_ABSENT = object()
# settings that do not change what a run computes (both input pipelines give the same batches; the cache
# folder only says where features are kept; devices do not change the global batch): a run may continue
# with other values
NOT_IDENTITY = tuple(f.name for f in fields(TrainConfig) if not f.metadata["identity"])
