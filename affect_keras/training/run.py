"""One training run: phase 1 (head on the frozen backbone), optional phase 2 (fine-tune the top).

A run directory `models/<run>/` receives::

    config.yaml             the resolved settings (re-run with train.py --config models/<run>/config.yaml)
    history.csv, curves.png loss and accuracy per epoch, train vs val (one row per epoch, also after a
                            resume)
    best.keras, last.keras  checkpoints (best by --monitor)
    backbone.weights.h5     the trained backbone, reusable with --weights PATH
    logs/                   TensorBoard
    backup/                 BackupAndRestore state: the same command continues a killed run
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import yaml

from affect_keras.data.loader import MIXES, SAMPLINGS, TARGETS, EpochOrder, FaceBatches, read_summary
from affect_keras.deploy.export import FORMATS, export
from affect_keras.deploy.inference import CLASS_NAMES
from affect_keras.deploy.model_card import write_model_card
from affect_keras.models.augment import PRESETS
from affect_keras.models.backbones import BACKBONES, get_backbone
from affect_keras.models.build import backbone_padding, build_model, save_backbone, saved_backbone, unfreeze
from affect_keras.models.heads import POOLINGS, HeadConfig
from affect_keras.options import check
from affect_keras.training import class_weights as cw
from affect_keras.training.cache import CachedBatches, cache_keys, cached_features, split_model
from affect_keras.training.history import HistoryCSV, best_so_far
from affect_keras.training.resume import RandomStateBackup
from affect_keras.training.optim import OPTIMIZERS, SCHEDULES, learning_rate, optimizer
from affect_keras.training.plots import plot_curves

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
METRICS = ("loss", "accuracy", "top2")  # what _compile makes fit log, for training and validation
MONITORS = (*METRICS, *(f"val_{m}" for m in METRICS))
AUTO_VIEWS = 4  # augmented views per training image cached by default when augmentation is on


@dataclass
class TrainConfig:
    data: str
    run_dir: str
    backbone: str = "vgg16"
    weights: str = "imagenet"
    imagenet_checkpoint: str = ""
    stem: str = "auto"
    image_size: int = 0
    augment: str = "light"
    pooling: str = "avg"
    dense: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.3
    head_batch_norm: bool = True
    l2: float = 1e-4
    class_weights: str = "auto"
    class_weight_power: float = 1.0
    label_smoothing: float = 0.0
    targets: str = "majority"
    sampling: str = "none"
    mix: str = "none"
    mix_alpha: float = 0.2
    batch_size: int = 32
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: int = 0
    step_every: int = 1000
    step_factor: float = 0.9
    finetune_epochs: int = 0
    unfreeze: str = "4"
    finetune_lr: float = 1e-5
    monitor: str = "val_accuracy"
    patience: int = 0
    precision: str = "float32"
    seed: int = 0
    cache_views: int = -1
    cache_dir: str = ""
    export: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check([(self.backbone in BACKBONES, "backbone", f"must be one of {', '.join(BACKBONES)}")])
        spec = get_backbone(self.backbone)
        checks = [
            (self.stem in ("auto", *spec.stems), "stem", f"must be auto or one of {', '.join(spec.stems)} "
                                                         f"for {self.backbone}"),
            (self.weights != "imagenet" or self.stem in ("auto", spec.stems[0]), "stem",
             f"{self.stem}: ImageNet weights need the {spec.stems[0]} stem"),
            (self.imagenet_checkpoint in ("", *spec.checkpoints), "imagenet-checkpoint",
             f"must be one of {', '.join(spec.checkpoints)} for {self.backbone}"),
            (self.augment in PRESETS, "augment", f"must be one of {', '.join(PRESETS)}"),
            (self.pooling in POOLINGS, "pooling", f"must be one of {', '.join(POOLINGS)}"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}"),
            (self.targets in TARGETS, "targets", f"must be one of {', '.join(TARGETS)}"),
            (self.sampling in SAMPLINGS, "sampling", f"must be one of {', '.join(SAMPLINGS)}"),
            (self.mix in MIXES, "mix", f"must be one of {', '.join(MIXES)}"),
            (self.mix_alpha > 0, "mix-alpha", "must be > 0"),
            (set(self.export) <= set(FORMATS), "export", f"formats must be among {', '.join(FORMATS)}"),
            (self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}"),
            (self.image_size == 0 or self.image_size >= 32, "image-size", "must be 0 (backbone default) or >= 32"),
            (self.batch_size >= 1, "batch-size", "must be >= 1"),
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.finetune_epochs >= 0, "finetune-epochs", "must be >= 0"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.finetune_lr > 0, "finetune-lr", "must be > 0"),
            (0 <= self.dropout < 1, "dropout", "must be in [0, 1)"),
            (0 < self.class_weight_power <= 1, "class-weight-power", "must be in (0, 1]"),
            (0 <= self.label_smoothing < 1, "label-smoothing", "must be in [0, 1)"),
            (all(d >= 1 for d in self.dense), "dense", "sizes must be >= 1"),
            (self.weights in ("imagenet", "none") or Path(self.weights).is_file(), "weights",
             "must be imagenet, none, or an existing backbone.weights.h5"),
            (self.finetune_epochs == 0 or self.weights != "none", "finetune-epochs",
             "fine-tunes the top of a pretrained backbone; with --weights none the whole backbone trains "
             "from the first epoch, so add --epochs instead"),
            (self.cache_views >= -1, "cache-views", "must be -1 (auto), 0 (off) or a number of views"),
            (self.cache_views <= 0 or self.weights != "none", "cache-views",
             "needs a frozen backbone (--weights imagenet or PATH): with --weights none the features change"),
            (self.cache_views <= 0 or self.mix == "none", "cache-views",
             "cannot be used with --mix: MixUp and CutMix mix images, not features; use --cache-views 0"),
            (self.monitor in MONITORS, "monitor", f"must be one of the metrics a run logs: {', '.join(MONITORS)}"),
            (self.class_weights in cw.METHODS or Path(self.class_weights).is_file(), "class-weights",
             "must be auto, effective, none, or an existing YAML/JSON file"),
        ]
        check(checks)

    @property
    def size(self) -> int:
        return self.image_size or get_backbone(self.backbone).default_size

    def resolve(self) -> None:
        """Fill in what "auto" and "" stand for, so the saved config says what the run used."""
        spec = get_backbone(self.backbone)
        if self.weights == "imagenet":
            self.imagenet_checkpoint = self.imagenet_checkpoint or spec.checkpoints[0]
        elif self.weights != "none" and self.stem == "auto":  # a saved backbone keeps its stem (a --stem
            # that contradicts it is refused when the model is built); without a record, the size decided
            self.stem = saved_backbone(Path(self.weights)).get("stem") or spec.default_stem(None, self.size)
        if self.stem == "auto":
            self.stem = spec.default_stem(None if self.weights == "none" else self.weights, self.size)
        if self.cache_views == -1:  # auto: cache whenever the backbone is frozen and nothing mixes images
            frozen = self.weights != "none" and self.mix == "none"
            self.cache_views = (1 if self.augment == "none" else AUTO_VIEWS) if frozen else 0

    @property
    def unfreeze_spec(self) -> int | list[str]:
        return int(self.unfreeze) if self.unfreeze.isdigit() else self.unfreeze.split(",")


def train(config: TrainConfig, verbose: int | str = "auto") -> keras.Model:
    """Run both phases and write the run directory; returns the trained model."""
    config.validate()
    config.resolve()
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.precision)
    if config.sampling == "oversample" and config.class_weights != "none":
        print("--sampling oversample balances the batches, so class weights are off (--class-weights none)")
        config.class_weights = "none"
    summary = read_summary(Path(config.data))
    names = summary["class_names"]
    run = Path(config.run_dir)
    settings = yaml.safe_dump(asdict(config), sort_keys=False)
    finished_epoch = (run / "history.csv").is_file()  # a run that failed before it is nothing to protect
    if finished_epoch and (run / "config.yaml").is_file() and (run / "config.yaml").read_text() != settings:
        raise ValueError(f"--run-dir {run} holds a run with other settings; choose another --run-dir, or "
                         f"continue that run with --config {run / 'config.yaml'}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(settings)
    (run / CLASS_NAMES).write_text(json.dumps(names))

    train_data = FaceBatches(config.data, "train", names, config.size, config.batch_size, shuffle=True,
                             seed=config.seed, targets=config.targets, sampling=config.sampling,
                             mix=config.mix, mix_alpha=config.mix_alpha)
    val_data = FaceBatches(config.data, "val", names, config.size, config.batch_size)
    for split, data in (("train", train_data), ("val", val_data)):
        if not len(data):
            raise ValueError(f"--data {config.data}: the {split} split has no images")
    train_counts = summary["counts"]["train"]
    weights = cw.class_weights(config.class_weights, train_counts, names, config.class_weight_power)
    print(cw.describe(weights, train_counts, names))

    model = build_model(config.backbone, len(names), config.size,
                        weights=None if config.weights == "none" else config.weights, augment=config.augment,
                        head_config=HeadConfig(config.pooling, tuple(config.dense), config.dropout,
                                               config.head_batch_norm, config.l2), seed=config.seed,
                        stem=config.stem, checkpoint=config.imagenet_checkpoint or None)
    steps = len(train_data)
    rate = learning_rate(config.schedule, config.lr, steps * config.epochs, steps * config.warmup_epochs,
                         config.step_every, config.step_factor)
    _compile(model, rate, config)
    # shuffle=False: FaceBatches draws its own order from (seed, epoch), which survives a restore
    fit = dict(validation_data=val_data, class_weight=weights, verbose=verbose, shuffle=False)
    callbacks = lambda phase: [EpochOrder(train_data), *_callbacks(run, config, phase)]  # noqa: E731
    if config.cache_views:
        _fit_head_on_cache(model, train_data, val_data, rate, config, run, fit)
    else:
        model.fit(train_data, epochs=config.epochs, callbacks=callbacks("phase1"), **fit)
    if config.finetune_epochs:
        trainable = unfreeze(model, config.unfreeze_spec)
        print(f"Fine-tuning {len(trainable)} backbone layers at lr {config.finetune_lr}")
        _compile(model, config.finetune_lr, config)
        model.fit(train_data, initial_epoch=config.epochs, epochs=config.epochs + config.finetune_epochs,
                  callbacks=callbacks("phase2"), **fit)
    model.save(run / "last.keras")
    save_backbone(model, run, {"backbone": config.backbone, "stem": config.stem, "image_size": config.size,
                               "weights": config.weights, "imagenet_checkpoint": config.imagenet_checkpoint},
                  backbone_padding(None if config.weights == "none" else config.weights))
    plot_curves(run / "history.csv", run / "curves.png")
    write_model_card(run)
    if config.export:
        for fmt, path in export(run, config.export).items():
            print(f"Exported {fmt}: {path}")
    return model


def _fit_head_on_cache(model, train_data, val_data, rate, config: TrainConfig, run: Path, fit: dict) -> None:
    """Phase 1 on cached backbone features: the head's layers are the full model's, so this trains it."""
    keys = cache_keys(model, config.backbone, config.stem, config.pooling, config.seed,
                      {"train": (train_data, config.augment, config.cache_views), "val": (val_data, "none", 1)})
    root = Path(config.cache_dir) if config.cache_dir else Path(config.data) / "feature_cache"
    train_features = cached_features(model, train_data, keys["train"], root)
    val_features = cached_features(model, val_data, keys["val"], root)
    _, head = split_model(model)
    _compile(head, rate, config)
    head.fit(CachedBatches(train_data, train_features), epochs=config.epochs,
             callbacks=[EpochOrder(train_data), *_callbacks(run, config, "phase1", full_model=model)],
             **{**fit, "validation_data": CachedBatches(val_data, val_features)})


def _compile(model: keras.Model, rate, config: TrainConfig) -> None:
    """Compile with the configured optimiser at `rate` (a float or a schedule); phase 2 compiles again."""
    opt = optimizer(config.optimizer, rate, config.momentum, config.nesterov, config.weight_decay)
    model.compile(optimizer=opt,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy", keras.metrics.TopKCategoricalAccuracy(2, name="top2")],
                  jit_compile="auto")


class _FullModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves `full` whichever model fit trains (the head on cached features)."""

    def __init__(self, full: keras.Model, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._full = full

    def set_model(self, model):
        super().set_model(self._full)


def _callbacks(run: Path, config: TrainConfig, phase: str, full_model: keras.Model | None = None
               ) -> list[keras.callbacks.Callback]:
    monitor = config.monitor
    mode = "min" if "loss" in monitor else "max"
    checkpoint = dict(monitor=monitor, mode=mode, save_best_only=True,
                      initial_value_threshold=best_so_far(run / "history.csv", monitor, mode))
    callbacks = [
        RandomStateBackup(run / "backup" / "random_state.json"),
        # the finished phase's state is kept, so a re-run after a kill in phase 2 skips phase 1
        keras.callbacks.BackupAndRestore(str(run / "backup" / phase), delete_checkpoint=False),
        HistoryCSV(run / "history.csv"),
        _FullModelCheckpoint(full_model, str(run / "best.keras"), **checkpoint) if full_model is not None
        else keras.callbacks.ModelCheckpoint(str(run / "best.keras"), **checkpoint),
    ]
    if _has_tensorflow():  # keras writes TensorBoard logs through tf.summary
        callbacks.append(keras.callbacks.TensorBoard(str(run / "logs")))
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor, patience=config.patience, mode=mode,
                                                       restore_best_weights=True))
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5, patience=2, mode=mode))
    return callbacks


def _has_tensorflow() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        return False
