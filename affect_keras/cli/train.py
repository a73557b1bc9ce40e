"""train.py: transfer learning on prepared class folders."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from affect_keras.cli.common import ArgumentParser
from affect_keras.data.batching import MIXES, PIPELINES, SAMPLINGS, TARGETS
from affect_keras.deploy.export import FORMATS
from affect_keras.models import LAYOUTS
from affect_keras.models.augment import PRESETS
from affect_keras.models.backbones import BACKBONES
from affect_keras.models.heads import POOLINGS
from affect_keras.training.config import AUTO_VIEWS, PRECISIONS, TrainConfig
from affect_keras.tasks import TASKS
from affect_keras.training.distribute import STRATEGIES, check_tf_config
from affect_keras.training.supervisor import supervise, supervised
from affect_keras.training.losses import LOSSES, VA_LOSSES
from affect_keras.training.optim import OPTIMIZERS, SCHEDULES

DEFAULTS = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(TrainConfig)}


def build_parser() -> ArgumentParser:
    d = DEFAULTS
    parser = ArgumentParser(prog="train.py", description="Train an expression classifier on folders written "
                                                         "by prepare_dataset.py; writes models/<run>/.")
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="prepared dataset folder (required)")
    data.add_argument("--image-size", type=int, default=d["image_size"], help="input side (0: backbone default)")
    data.add_argument("--batch-size", type=int, default=d["batch_size"])
    data.add_argument("--input-pipeline", choices=PIPELINES, default=d["input_pipeline"],
                      help="tf.data: parallel JPEG decoding in TensorFlow (TensorFlow backend); pydataset: "
                           "FaceBatches on Python threads (any backend); auto: tf.data where it runs. Both "
                           "give the same batches for a seed and epoch")
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", choices=list(BACKBONES), default=d["backbone"])
    model.add_argument("--weights", default=d["weights"], help="imagenet | none (train from scratch) | a preset "
                       "(a shipped name such as ferplus_resnet18_48, or a preset folder: its face-trained backbone "
                       "with its own stem and padding) | PATH of a backbone.weights.h5 from an earlier run")
    model.add_argument("--imagenet-checkpoint", default=d["imagenet_checkpoint"],
                       help="with --weights imagenet, which checkpoint (resnet18/34: a timm tag such as "
                            "resnet18.a1_in1k, the default, or resnet18.tv_in1k; empty: the backbone's default)")
    model.add_argument("--stem", default=d["stem"],
                       help="resnet18/34: imagenet (7x7/2 + max-pool, needed by ImageNet weights) or small "
                            "(3x3/1, for faces of 64 px or less from scratch); auto picks by weights and size")
    model.add_argument("--pooling", choices=list(POOLINGS), default=d["pooling"])
    model.add_argument("--dense", type=lambda s: [int(v) for v in s.split(",") if v], default=d["dense"],
                       help="hidden dense sizes of the head, comma-separated (empty: none)")
    model.add_argument("--dropout", type=float, default=d["dropout"])
    model.add_argument("--no-head-batch-norm", dest="head_batch_norm", action="store_false")
    model.add_argument("--l2", type=float, default=d["l2"], help="L2 penalty on the head")
    model.add_argument("--augment", choices=list(PRESETS), default=d["augment"])
    model.add_argument("--mix", choices=MIXES, default=d["mix"], help="MixUp or CutMix on training batches")
    model.add_argument("--mix-alpha", type=float, default=d["mix_alpha"], help="Beta(alpha, alpha) mixing ratio")
    task = parser.add_argument_group("task: what the model predicts")
    task.add_argument("--task", choices=list(TASKS), default=d["task"],
                      help="; ".join(f"{name}: {spec.description}" for name, spec in TASKS.items()))
    task.add_argument("--va-loss", choices=list(VA_LOSSES), default=d["va_loss"],
                      help="va / multitask: ccc (1 - concordance correlation over the batch) or mse; faces "
                           "without valence / arousal (FER+, folders, AffectNet's -2) are masked out")
    task.add_argument("--va-weight", type=float, default=d["va_weight"],
                      help="multitask: weight of the V/A loss against the expression loss (1)")
    loss = parser.add_argument_group("loss")
    loss.add_argument("--class-weights", default=d["class_weights"],
                      help="auto (inverse frequency, mean 1) | effective (effective number) | none | FILE")
    loss.add_argument("--class-weight-power", type=float, default=d["class_weight_power"],
                      help="auto: weights proportional to count ** -power (1: inverse frequency; 0.25-0.5 "
                           "temper it, for rare classes at less cost to overall accuracy)")
    loss.add_argument("--loss", choices=list(LOSSES), default=d["loss"],
                      help="crossentropy | focal (keras's focal loss: easy, mostly frequent-class examples "
                           "count less) | logit-adjusted (Menon et al. 2021: trained on logits shifted by "
                           "tau * log prior, so the model's own output is balanced across classes)")
    loss.add_argument("--logit-tau", type=float, default=d["logit_tau"], help="logit-adjusted: tau")
    loss.add_argument("--focal-gamma", type=float, default=d["focal_gamma"], help="focal: gamma")
    loss.add_argument("--label-smoothing", type=float, default=d["label_smoothing"])
    loss.add_argument("--targets", choices=TARGETS, default=d["targets"],
                      help="majority: one-hot labels | votes: FER+ vote distributions as soft targets")
    loss.add_argument("--sampling", choices=SAMPLINGS, default=d["sampling"],
                      help="oversample: class-balanced batches (draws with probability 1 / class count); "
                           "upsample: every image once plus the smaller classes repeated up to the largest; "
                           "undersample: every class drawn down to the smallest, anew each epoch. Each "
                           "replaces class weights")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--optimizer", choices=list(OPTIMIZERS), default=d["optimizer"])
    optim.add_argument("--lr", type=float, default=d["lr"])
    optim.add_argument("--momentum", type=float, default=d["momentum"], help="SGD momentum")
    optim.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    optim.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    optim.add_argument("--schedule", choices=list(SCHEDULES), default=d["schedule"])
    optim.add_argument("--warmup-epochs", type=int, default=d["warmup_epochs"], help="cosine warm-up")
    optim.add_argument("--step-every", type=int, default=d["step_every"], help="step schedule: steps per decay")
    optim.add_argument("--step-factor", type=float, default=d["step_factor"], help="step schedule: factor")
    optim.add_argument("--epochs", type=int, default=d["epochs"], help="phase 1: head on the frozen backbone")
    optim.add_argument("--precision", choices=PRECISIONS, default=d["precision"])
    tune = parser.add_argument_group("fine-tuning (phase 2)")
    tune.add_argument("--finetune-epochs", type=int, default=d["finetune_epochs"])
    tune.add_argument("--unfreeze", default=d["unfreeze"],
                      help="top backbone layers to unfreeze: a number, or block names such as block5,stage4")
    tune.add_argument("--finetune-lr", type=float, default=d["finetune_lr"])
    run = parser.add_argument_group("run")
    run.add_argument("--run-dir", help="default: models/<backbone>-<data folder name>; the same command "
                                        "again continues an interrupted run there")
    run.add_argument("--monitor", default=d["monitor"],
                     help="metric for the best checkpoint and early stopping; auto: val_accuracy, or "
                          "val_expression_accuracy when the model has several heads, or val_loss for va")
    run.add_argument("--patience", type=int, default=d["patience"], help="early stopping (0: off)")
    cache = parser.add_argument_group(
        "feature cache (frozen backbone)",
        "With a frozen backbone (--weights imagenet or PATH) phase 1 trains the head on backbone features "
        "computed once per split and stored under --cache-dir, keyed by backbone, weights, size, pooling, "
        "manifest, augmentation, views and seed; a later run with another head, loss or optimiser reuses "
        "them without running the backbone. What it gives up: augmentation becomes --cache-views fixed "
        "draws per image (epoch e trains on view e mod K) instead of a fresh draw every epoch, and --mix "
        "is unavailable. Phase 2 fine-tunes uncached, from the same full model.")
    cache.add_argument("--cache-views", type=int, default=d["cache_views"],
                       help=f"augmented views stored per training image; 0: no cache, train as the backbone "
                            f"runs every epoch; -1 (auto): 1 without augmentation, {AUTO_VIEWS} with it, 0 "
                            f"when the backbone trains or --mix is on")
    cache.add_argument("--cache-dir", default=d["cache_dir"], help="where features are stored "
                                                                   "(default: DATA/feature_cache)")
    run.add_argument("--seed", type=int, default=d["seed"])
    run.add_argument("--distribute", choices=list(STRATEGIES), default=d["distribute"],
                     help="none | mirrored: this machine's GPUs (TensorFlow MirroredStrategy; on JAX "
                          "keras.distribution.DataParallel) | multiworker: several machines (MultiWorkerMirroredStrategy "
                          "by TF_CONFIG; the same command on every worker, each its own --run-dir) | "
                          "tpu: TPUStrategy | model-parallel (JAX): every kernel's output channels sharded over the "
                          "local devices (keras.distribution.ModelParallel). --batch-size is the global batch, "
                          "split over the replicas")
    run.add_argument("--worker-timeout", type=float, default=600, metavar="SECONDS",
                     help="multiworker: give up, naming the workers that do not answer, when not every worker "
                          "of TF_CONFIG has joined within this time")
    # recorded in config.yaml so that runs made before the core / training split continue as they were
    # built (--config of such a run sets it); not a choice users make
    run.add_argument("--layout", choices=list(LAYOUTS), default=d["layout"], help=argparse.SUPPRESS)
    run.add_argument("--export", nargs="+", choices=list(FORMATS), default=d["export"], metavar="FORMAT",
                     help=f"export the finished model: {', '.join(FORMATS)} (see export.py)")
    return parser


def parse_training_args(parser: ArgumentParser, argv) -> dict:
    """The parsed options as TrainConfig's fields (and any the caller added), --data required."""
    args = vars(parser.parse_args(argv))
    args.pop("config")
    if not args["data"]:
        parser.error("argument --data is required")
    return args


def main(argv=None) -> int:
    parser = build_parser()
    args = parse_training_args(parser, argv)
    args["run_dir"] = args["run_dir"] or str(Path("models") / f"{args['backbone']}-{Path(args['data']).resolve().name}")
    worker_timeout = args.pop("worker_timeout")
    config = TrainConfig(**args)
    try:
        config.validate()
        if worker_timeout <= 0:
            raise ValueError("--worker-timeout must be > 0 seconds")
    except ValueError as error:
        parser.fail(error)
    if config.distribute == "multiworker" and not supervised():  # watched from a process without TensorFlow
        try:
            tf_config = check_tf_config(os.environ.get("TF_CONFIG"))
        except ValueError as error:
            parser.fail(error)
        return supervise(list(sys.argv[1:] if argv is None else argv), tf_config, worker_timeout)
    from affect_keras.training.run import train  # keras and TensorFlow start here, not for --help

    from affect_keras.deploy.export import export
    from affect_keras.deploy.model_card import write_model_card

    try:
        train(config)
        write_model_card(Path(config.run_dir))
        if config.export:
            for fmt, path in export(Path(config.run_dir), config.export).items():
                print(f"Exported {fmt}: {path}")
    except (ValueError, RuntimeError) as error:
        parser.exit(1, f"train.py: error: {error}\n")
    print(f"Run written to {config.run_dir}")
    return 0
