"""A training run's settings: `TrainConfig`, what train.py, a --config file and config.yaml hold.

Validating and listing the settings imports no keras (so `train.py --help` and a mistyped flag answer at
once); `resolve()`, which looks at the backend and at a saved backbone, imports what it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from affect_keras.data.batching import MIXES, PIPELINES, SAMPLINGS, TARGETS
from affect_keras.names import EXPORT_FORMATS
from affect_keras.models import LAYOUTS
from affect_keras.models.augment import PRESETS
from affect_keras.models.backbones import BACKBONES, get_backbone
from affect_keras.models.heads import POOLINGS
from affect_keras.models.presets import backbone_weights, cache_root, is_preset
from affect_keras.tasks import TASKS, get_task
from affect_keras.options import check
from affect_keras.training import class_weights as cw
from affect_keras.training.distribute import STRATEGIES
from affect_keras.training.losses import LOSSES, VA_LOSSES
from affect_keras.training.optim import OPTIMIZERS, SCHEDULES

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MONITORS = TASKS["expression"].monitors()  # what an expression classifier logs (other tasks: Task.monitors)
AUTO_VIEWS = 4  # augmented views per training image cached by default when augmentation is on
# what a run did before the setting existed: a run directory whose config.yaml lacks the key continues
# doing it (a settings file from an older version must not block "the same command continues the run")
# settings that do not change what a run computes (both input pipelines give the same batches; the cache
# folder only says where features are kept): a run may continue with other values
NOT_IDENTITY = ("input_pipeline", "cache_dir", "distribute")  # --batch-size is global: devices change no result
BEFORE_SETTING = {"input_pipeline": "pydataset", "loss": "crossentropy", "logit_tau": 1.0, "focal_gamma": 2.0,
                  "class_weight_power": 1.0, "cache_views": 0, "cache_dir": "",
                  "layout": "chain", "task": "expression", "va_loss": "ccc", "va_weight": 1.0,
                  "distribute": "none"}


@dataclass
class TrainConfig:
    """Every setting of one training run: `train(config)` runs it, train.py builds it from its flags (one
    flag per field, `--help` groups them), and the run directory keeps it as `config.yaml`.

    Args (the main ones; the others as train.py's `--help` lists them):
        data: a folder written by prepare_dataset.py.
        run_dir: where the run is written (and resumed from).
        backbone, weights: a `models.backbones.BACKBONES` name and "imagenet", "none", a preset's name or a
            saved backbone's path.
        epochs, finetune_epochs, unfreeze: the frozen phase, then the fine-tuned one.
        class_weights: "none", "auto" or a file of class: weight.

    Examples:
        >>> import affect_keras
        >>> config = affect_keras.TrainConfig(data="data/fer48", run_dir="models/r18", backbone="resnet18",
        ...                                   weights="ferplus_resnet18_48", class_weights="auto")
        >>> model = affect_keras.train(config)
    """
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
    task: str = "expression"
    va_loss: str = "ccc"
    va_weight: float = 1.0
    loss: str = "crossentropy"
    logit_tau: float = 1.0
    focal_gamma: float = 2.0
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
    monitor: str = "auto"
    patience: int = 0
    precision: str = "float32"
    seed: int = 0
    cache_views: int = -1
    cache_dir: str = ""
    input_pipeline: str = "auto"
    export: list[str] = field(default_factory=list)
    distribute: str = "none"
    layout: str = "core"  # not a user's choice: runs made before the core / training split keep "chain"

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
            (set(self.export) <= set(EXPORT_FORMATS), "export", f"formats must be among {', '.join(EXPORT_FORMATS)}"),
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
            (self.loss in LOSSES, "loss", f"must be one of {', '.join(LOSSES)}"),
            (self.logit_tau > 0, "logit-tau", "must be > 0"),
            (self.focal_gamma >= 0, "focal-gamma", "must be >= 0"),
            (all(d >= 1 for d in self.dense), "dense", "sizes must be >= 1"),
            (self.weights in ("imagenet", "none") or Path(self.weights).is_file() or is_preset(self.weights),
             "weights", "must be imagenet, none, a preset (shipped name or folder), or an existing "
                        "backbone.weights.h5"),
            (self.finetune_epochs == 0 or self.weights != "none", "finetune-epochs",
             "fine-tunes the top of a pretrained backbone; with --weights none the whole backbone trains "
             "from the first epoch, so add --epochs instead"),
            (self.cache_views >= -1, "cache-views", "must be -1 (auto), 0 (off) or a number of views"),
            (self.cache_views <= 0 or self.weights != "none", "cache-views",
             "needs a frozen backbone (--weights imagenet or PATH): with --weights none the features change"),
            (self.cache_views <= 0 or self.mix == "none", "cache-views",
             "cannot be used with --mix: MixUp and CutMix mix images, not features; use --cache-views 0"),
            (self.distribute in STRATEGIES, "distribute", f"must be one of {', '.join(STRATEGIES)}"),
            (self.layout in LAYOUTS, "layout", f"must be one of {', '.join(LAYOUTS)}"),
            (self.input_pipeline in PIPELINES, "input-pipeline", f"must be one of {', '.join(PIPELINES)}"),
            (self.task in TASKS, "task", f"must be one of {', '.join(TASKS)}"),
            (self.va_loss in VA_LOSSES, "va-loss", f"must be one of {', '.join(VA_LOSSES)}"),
            (self.va_weight >= 0, "va-weight", "must be >= 0"),
            (self.mix == "none" or self.task == "expression", "mix",
             f"mixes expression targets only: use --mix none with --task {self.task}"),
            (self.class_weights in cw.METHODS or Path(self.class_weights).is_file(), "class-weights",
             "must be auto, effective, none, or an existing YAML/JSON file"),
        ]
        check(checks)
        monitors = get_task(self.task).monitors()
        check([(self.monitor == "auto" or self.monitor in monitors, "monitor",
                f"must be auto or one of the metrics a --task {self.task} run logs: {', '.join(monitors)}")])

    @property
    def size(self) -> int:
        return self.image_size or get_backbone(self.backbone).default_size

    def adopt_older(self, saved: dict) -> None:
        """Before `resolve()`, for continuing the run `saved` (its config.yaml) describes: each setting it
        predates takes what its version did, unless this command sets it otherwise."""
        for key, value in BEFORE_SETTING.items():
            if key not in saved and getattr(self, key) == _DEFAULTS[key]:
                setattr(self, key, value)
        if "layout" in saved:  # how the run's model is put together is the run's, never the command's
            self.layout = saved["layout"]

    def differences(self, saved: dict) -> list[str]:
        """The settings (resolved) that differ from the run `saved` describes. A setting it lacks counts,
        unless its version predates the setting (`BEFORE_SETTING`) and the run still does what it did."""
        current = asdict(self)
        return [key for key, value in current.items() if key not in NOT_IDENTITY and
                (saved[key] != value if key in saved else BEFORE_SETTING.get(key, object()) != value)]

    def resolve(self) -> None:
        """Fill in what "auto" and "" stand for, so the saved config says what the run used."""
        from affect_keras.data.serving import resolve_pipeline
        from affect_keras.models.build import saved_backbone

        if self.sampling != "none" and self.class_weights != "none":
            print(f"--sampling {self.sampling} balances the classes, so class weights are off "
                  f"(--class-weights none)")
            self.class_weights = "none"
        spec = get_backbone(self.backbone)
        if is_preset(self.weights):  # its backbone, with its stem, padding and preprocessing (backbone.json)
            self.weights = str(backbone_weights(self.weights, cache_root() / "presets"))
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


_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name in BEFORE_SETTING}
