"""One training run: phase 1 (head on the frozen backbone), optional phase 2 (fine-tune the top).

A run directory `models/<run>/` receives::

    config.yaml             the resolved settings (re-run with train.py --config models/<run>/config.yaml)
    data_fingerprint.json   the data it started on: continuing on data prepared again is refused
    history.csv, curves.png loss and accuracy per epoch, train vs val (one row per epoch, also after a
                            resume)
    best.keras, last.keras  the ExpressionClassifier, best by --monitor and at the end: each describes
                            itself (class names, size, framing, ...); `--weights RUN` reuses its backbone;
                            best.keras calibrated by a temperature fitted on the validation split
                            (--no-calibrate: not)
    calibration.json        best.keras's temperature and its ECE / NLL / Brier score before and after
    README.md               the model card (evaluate.py adds its reports)
    export/                 with --export: the exported formats
    logs/                   TensorBoard
    backup/                 BackupAndRestore state: the same command continues a killed run
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import yaml

from affect_keras.atomic import lock_folder, partial_path, refuse_foreign_folder, write_model, writable_folder
from affect_keras.data.fingerprint import data_fingerprint
from affect_keras.data.loader import EpochOrder, FaceBatches
from affect_keras.data.table import read_summary
from affect_keras.data.serving import serve
from affect_keras.data.prepare.config import framing_of
from affect_keras.tasks import get_task
from affect_keras.heads import HEADS
from affect_keras.models.build import classifier_of, load_pretrained, training_model, unfreeze
from affect_keras.models.classifier import ExpressionClassifier, per_head
from affect_keras.models.export import export
from affect_keras.models.loading import module_installed
from affect_keras.options import OptionError
from affect_keras.training import class_weights as cw
from affect_keras.training.losses import HEAD_LOSSES, head_weight
from affect_keras.training.cache import CachedBatches, cache_keys, cached_features, split_model
from affect_keras.training.calibrate import CalibrationRefused, calibrate_run
from affect_keras.training.config import TrainConfig
from affect_keras.training.distribute import distribution
from affect_keras.training.history import HistoryCSV, best_so_far
from affect_keras.evaluation.model_card import write_model_card
from affect_keras.training.optim import learning_rate, optimizer
from affect_keras.evaluation.plots import plot_curves
from affect_keras.training.resume import RandomStateBackup

log = logging.getLogger(__name__)

# A head step on cached features takes a fraction of a millisecond, so keras's per-step dispatch would
# dominate; running this many steps per call measured 1.5-1.8x more images/s (python -m affect_keras.bench)
HEAD_STEPS_PER_EXECUTION = 32
DATA_FINGERPRINT = "data_fingerprint.json"  # the data a run started on (data.fingerprint), per split


def train(config: TrainConfig, verbose: int | str = "auto") -> ExpressionClassifier:
    """Run both phases and write the run directory. The steps: open the run directory, build the data and
    the model, fit phase 1 (on cached features when the backbone is frozen), fit phase 2, save, calibrate,
    write the model card and the exports `config.export` asks for.

    Args:
        config: the run's settings; `config.run_dir` (default models/<backbone>-<data folder name>) is
            written, and the same config again continues an interrupted run there.
        verbose: keras's progress output ("auto": a bar per epoch; 0: none).

    Returns:
        The run's classifier: best.keras's, calibrated (the last epoch's where no checkpoint was best, or
        calibration is off or refused: a validation split too small or of one class, a fit on the edge).

    Examples:
        The `affect_keras.TrainConfig` example's `config`: the sample, the preset's backbone frozen:

        >>> import affect_keras
        >>> from pathlib import Path
        >>> model = affect_keras.train(config, verbose=0)
        >>> model.class_names[:2], model.image_size
        (['Neutral', 'Happy'], 32)
        >>> sorted(path.name for path in Path("models/s32").glob("*.keras"))
        ['best.keras', 'last.keras']
    """
    run, summary = _open_run(config)
    names = summary["class_names"]
    train_counts = summary["counts"]["train"]
    weights = cw.class_weights(config.class_weights, train_counts, names, config.class_weight_power)
    log.info(cw.describe(weights, train_counts, names))
    task = get_task(config.task)
    scope, replicas = distribution(config.distribute, config.batch_size)
    # JAX's DataParallel needs batches that divide evenly over the replicas, and so does TensorFlow's
    # MirroredStrategy on this model (AddN of unequal shards): the last batch is cut to a multiple of them
    train_data, val_data = _data(config, names, weights if task.dict_outputs else None, replicas)
    counts = [train_counts.get(n, 0) for n in names]  # each head's loss (--loss for the expressions)
    loss = per_head(task.heads, lambda head: HEAD_LOSSES[head.name](config, counts))
    if replicas > 1:
        log.info(
            "distribute %s: %d replicas, global batch %d (%d per replica), lr %g",
            config.distribute,
            replicas,
            config.batch_size,
            config.batch_size // replicas,
            config.lr,
        )
        for data in (train_data, val_data):
            if data.left_out:
                log.info(
                    "distribute %s: the last %s batch is cut to a multiple of %d devices, leaving out %d "
                    "image(s) per epoch",
                    config.distribute,
                    data.split,
                    replicas,
                    data.left_out,
                )
    with scope:  # the model, its optimiser and the fits on every replica (a no-op on one device)
        model = _model(config, names)
        if config.finetune_epochs:  # a wrong --unfreeze says so now, not after phase 1
            unfreeze(model, config.unfreeze_spec, apply=False)
        steps = len(train_data)
        rate = learning_rate(
            config.schedule,
            config.lr,
            total_steps=steps * config.epochs,
            warmup_steps=steps * config.warmup_epochs,
            step_every=config.step_every,
            step_factor=config.step_factor,
        )
        _compile(model, rate, config, loss)
        # shuffle=False: FaceBatches draws its own order from (seed, epoch), which survives a restore; both
        # input pipelines follow it (EpochOrder tells it the epoch)
        # several outputs: the class weights travel as per-sample weights in the batches instead
        fit = dict(class_weight=None if task.dict_outputs else weights, verbose=verbose, shuffle=False)
        served = []  # the uncached inputs on the chosen pipeline, built once if a phase needs them

        def inputs():
            served[:] = served or [serve(data, config.input_pipeline) for data in (train_data, val_data)]
            return served

        if config.cache_views:
            _fit_head_on_cache(model, train_data, val_data, rate, config, loss, run, fit)
        else:
            _fit_phase(model, *inputs(), train_data, 0, config.epochs, "phase1", config, run, fit)
        if config.finetune_epochs:
            trainable = unfreeze(model, config.unfreeze_spec)
            log.info("Fine-tuning %d backbone layers at lr %g", len(trainable), config.finetune_lr)
            _compile(model, config.finetune_lr, config, loss)
            _fit_phase(
                model,
                *inputs(),
                train_data,
                config.epochs,
                config.epochs + config.finetune_epochs,
                "phase2",
                config,
                run,
                fit,
            )
    classifier = classifier_of(model)
    write_model(classifier, run / "last.keras")
    if config.calibrate and get_task(config.task).has_expression and (run / "best.keras").is_file():
        try:
            classifier, _ = calibrate_run(run, Path(config.data), "val", config.batch_size)
        except CalibrationRefused as error:  # the run stands; its probabilities are left as trained
            log.warning(
                "Not calibrated: %s. calibrate.py %s --data DATA --split SPLIT fits it on a larger split",
                error.reason,
                run,
            )
    plot_curves(run / "history.csv", run / "curves.png")
    write_model_card(run)
    for fmt, path in export(run, config.export).items() if config.export else ():
        log.info("Exported %s: %s", fmt, path)
    return classifier


def _open_run(config: TrainConfig) -> tuple[Path, dict]:
    """Validate and resolve the settings, refuse a run directory holding another run, write config.yaml;
    returns (run directory, the dataset's summary)."""
    config.validate()
    config.resolve()
    run = Path(config.run_dir)
    refuse_foreign_folder(run, "config.yaml", "run_dir", "train.py")  # its README.md, plots, ... are not ours
    saved = None  # the settings of a run with a finished epoch (one that failed before is nothing to protect)
    if (run / "history.csv").is_file() and (run / "config.yaml").is_file():
        saved = config.recorded(yaml.safe_load((run / "config.yaml").read_text()))
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.precision)
    summary = read_summary(Path(config.data))
    differs = config.differences(saved) if saved is not None else []
    if differs:
        raise OptionError(
            "run_dir",
            f"{run} holds a run with other settings ({', '.join(differs)}); choose "
            f"another --run-dir, or continue that run with --config {run / 'config.yaml'} "
            f"--run-dir {run}",
        )
    writable_folder(run, "run_dir")  # before any work: a read-only place fails now, on one line
    lock_folder(run, "run_dir")  # two train.py on one run directory would corrupt its checkpoints
    fingerprint = data_fingerprint(Path(config.data))
    recorded = run / DATA_FINGERPRINT
    before = json.loads(recorded.read_text()) if saved is not None and recorded.is_file() else fingerprint
    if before != fingerprint:
        changed = sorted(k for k in fingerprint if before.get(k) != fingerprint[k])
        raise OptionError(
            "data",
            f"{config.data} changed since {run} started (its {', '.join(changed)} split: "
            f"prepared again?), so the epochs it finished trained on other data; start a new run "
            f"with another --run-dir, or put the data back as it was",
        )
    run.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(fingerprint))
    (run / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    return run, summary


def _data(
    config: TrainConfig, names: list[str], sample_weights: dict | None, replicas: int
) -> tuple[FaceBatches, FaceBatches]:
    """The training and validation splits, as the settings draw them; `sample_weights`: class weights to
    carry per sample (models with several outputs); batches cut to a multiple of `replicas`."""
    train_data = FaceBatches(
        config.data,
        "train",
        names,
        config.image_size,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        targets=config.targets,
        sampling=config.sampling,
        mix=config.mix,
        mix_alpha=config.mix_alpha,
        task=config.task,
        class_weights=sample_weights,
        multiple_of=replicas,
    )
    val_data = FaceBatches(
        config.data, "val", names, config.image_size, config.batch_size, task=config.task, multiple_of=replicas
    )
    for split, data in (("train", train_data), ("val", val_data)):
        if not len(data):
            raise OptionError("data", f"{config.data}: the {split} split has no images")
        for head in get_task(config.task).heads:
            if HEADS[head].needs and np.isnan(data.columns[head]).all():
                raise OptionError(
                    "task",
                    f"{config.task}: no face of the {split} split of --data {config.data} has {HEADS[head].needs}",
                )
    return train_data, val_data


def _model(config: TrainConfig, names: list[str]) -> keras.Model:
    """The training model around a new classifier of the settings, its backbone started from
    `config.weights`."""
    pretrained = config.weights != "none"
    classifier = ExpressionClassifier(
        config.backbone,
        names,
        config.image_size,
        stem=config.stem,
        task=config.task,
        label_scheme=read_summary(Path(config.data)).get("labels", ""),
        pooling=config.pooling,
        dense=config.dense,
        dropout=config.dropout,
        head_batch_norm=config.head_batch_norm,
        l2=config.l2,
        pretrained=pretrained,
        framing=framing_of(Path(config.data)),
    )
    if pretrained:
        load_pretrained(classifier, config.weights, config.imagenet_checkpoint or None)
    classifier.backbone.trainable = not pretrained
    return training_model(classifier, config.augment, config.seed)


def _fit_phase(
    model,
    train_input,
    val_input,
    faces: FaceBatches,
    first: int,
    last: int,
    phase: str,
    config: TrainConfig,
    run: Path,
    fit: dict,
) -> None:
    """Epochs first..last-1 of one phase; its own BackupAndRestore state, so a kill in phase 2 keeps phase 1."""
    model.fit(
        train_input,
        validation_data=val_input,
        initial_epoch=first,
        epochs=last,
        callbacks=[EpochOrder(faces), *_callbacks(run, config, phase, classifier_of(model))],
        **fit,
    )


def _fit_head_on_cache(model, train_data, val_data, rate, config: TrainConfig, loss, run: Path, fit: dict) -> None:
    """Phase 1 on cached backbone features: the head's layers are the full model's, so this trains it."""
    keys = cache_keys(
        model,
        config.backbone,
        config.stem,
        config.pooling,
        config.seed,
        {"train": (train_data, config.augment, config.cache_views), "val": (val_data, "none", 1)},
    )
    train_features = cached_features(model, train_data, keys["train"], config.feature_cache_root)
    val_features = cached_features(model, val_data, keys["val"], config.feature_cache_root)
    _, head = split_model(model)
    _compile(head, rate, config, loss, steps_per_execution=steps_per_execution(len(train_data)))
    head.fit(
        CachedBatches(train_data, train_features),
        epochs=config.epochs,
        callbacks=[EpochOrder(train_data), *_callbacks(run, config, "phase1", classifier_of(model))],
        **{**fit, "validation_data": CachedBatches(val_data, val_features)},
    )


def steps_per_execution(steps: int, most: int = HEAD_STEPS_PER_EXECUTION) -> int:
    """Head steps run per call on cached features: the largest divisor of the epoch's `steps` up to `most`
    (keras's progress bar counts whole executions: with 5 steps and 32 a call it showed 32/5 and a negative
    ETA), or `most` where the only such divisors are small (an epoch of a prime number of steps)."""
    divisor = max(d for d in range(1, min(most, steps) + 1) if steps % d == 0) if steps else 1
    return divisor if divisor >= min(8, steps) else most


def _compile(model: keras.Model, rate, config: TrainConfig, loss, steps_per_execution: int = 1) -> None:
    """Compile with the configured optimiser at `rate` (a float or a schedule) and `loss`; phase 2
    compiles again."""
    opt = optimizer(
        config.optimizer, rate, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )
    heads = get_task(config.task).heads
    weights = per_head(heads, lambda head: head_weight(head.name, config))
    model.compile(
        optimizer=opt,
        loss=loss,
        metrics=per_head(heads, lambda head: head.metrics()),
        loss_weights=weights if isinstance(weights, dict) else None,
        jit_compile="auto",
        steps_per_execution=steps_per_execution,
    )


class _ClassifierCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that saves the classifier whichever model fit trains (the training model around
    it, or the head on cached features): a checkpoint is the model a user loads, without augmentation.
    Written whole or not at all: keras writes a partial file, moved over the checkpoint once complete (a
    run killed while saving keeps its previous best.keras)."""

    def __init__(self, classifier: ExpressionClassifier, path: Path, **kwargs):
        self._final = Path(path)
        self._partial = partial_path(self._final)
        super().__init__(str(self._partial), **kwargs)
        self._classifier = classifier

    def set_model(self, model):
        super().set_model(self._classifier)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._partial.unlink(missing_ok=True)  # cut short by a killed run: never a checkpoint

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self._partial.is_file():  # written whole this epoch
            os.replace(self._partial, self._final)


def _callbacks(
    run: Path, config: TrainConfig, phase: str, classifier: ExpressionClassifier
) -> list[keras.callbacks.Callback]:
    monitor = config.monitor
    mode = "min" if "loss" in monitor else "max"
    checkpoint = dict(
        monitor=monitor,
        mode=mode,
        save_best_only=True,
        initial_value_threshold=best_so_far(run / "history.csv", monitor, mode),
    )
    callbacks = [
        StopOnNaN(),
        RandomStateBackup(run / "backup" / "random_state.json"),
        # the finished phase's state is kept, so a re-run after a kill in phase 2 skips phase 1
        keras.callbacks.BackupAndRestore(str(run / "backup" / phase), delete_checkpoint=False),
        HistoryCSV(run / "history.csv"),
        _ClassifierCheckpoint(classifier, run / "best.keras", **checkpoint),
    ]
    if module_installed("tensorflow"):  # keras writes TensorBoard logs through tf.summary
        callbacks.append(keras.callbacks.TensorBoard(str(run / "logs")))
    if config.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor, patience=config.patience, mode=mode, restore_best_weights=True)
        )
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=0.5, patience=2, mode=mode))
    return callbacks


class StopOnNaN(keras.callbacks.Callback):
    """keras's TerminateOnNaN, as an error: a loss that became NaN or infinite stops the run with a message
    (the checkpoints keep the last epoch that was not), where keras only stops fitting and the run would end
    as if it had finished."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise TrainingDiverged(
                f"the training loss became {float(loss)} at batch {batch}: the run stopped "
                f"(best.keras keeps the last good epoch); lower --lr, or check "
                f"--class-weights and the labels"
            )


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""
