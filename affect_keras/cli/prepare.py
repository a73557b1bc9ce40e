"""prepare_dataset.py: a dataset on disk -> class folders, manifests and a summary."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from affect_keras.cli.common import ArgumentParser
from affect_keras.data.faces import CROPS, DEFAULT_DETECTOR, DEFAULT_FRAMING, DETECTORS
from affect_keras.data.prepare import SAMPLINGS, SOURCES, PrepareConfig, prepare
from affect_keras.data.prepare.config import NO_FACE_CHOICES
from affect_keras.labels import SCHEMES


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="prepare_dataset.py",
        description="Write OUT/{train,val,test}/<Class>/*.jpg, a manifest per split and a summary, from "
                    "AffectNet (either release), FER+, a class-folder tree, or the built-in sample.")
    source = parser.add_argument_group("source")
    source.add_argument("--source", choices=list(SOURCES), default="sample", help="dataset layout under --root")
    source.add_argument("--root", type=Path, help="dataset folder (for sample: where it is generated; "
                                                  "default OUT/affectnet_sample)")
    class_map = source.add_argument("--class-map", metavar="FOLDER=CLASS,...", default="",
                                    help="folders source: rename class folders, e.g. joy=Happy,mad=Anger")
    # a config file may hold it as a mapping (as prepare_config.yaml saves it)
    class_map.from_mapping = lambda mapping: ",".join(f"{folder}={name}" for folder, name in mapping.items())
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help="where the prepared dataset is written (required)")
    output.add_argument("--size", type=int, default=256, help="side of the square output images, pixels")
    output.add_argument("--margin", type=float, default=0.0,
                        help="widen the face box by this fraction of its size on each side")
    faces = parser.add_argument_group("faces in photos (--source folders)")
    faces.add_argument("--detect", action="store_true",
                       help="find the largest face of each photo, level its eyes and frame it (--crop, "
                            "--margin) before resizing, as predict.py does")
    faces.add_argument("--detector", choices=list(DETECTORS), default=DEFAULT_DETECTOR,
                       help="blazeface: MediaPipe's BlazeFace, short range, with landmarks; blazeface-full: "
                            "for small faces far away; haar: OpenCV's cascade, no landmarks (no alignment)")
    faces.add_argument("--crop", choices=list(CROPS), default=DEFAULT_FRAMING.crop,
                       help="tight: a square on the face (as FER+); box: the detector's box plus --margin")
    faces.add_argument("--align", action=argparse.BooleanOptionalAction, default=DEFAULT_FRAMING.align,
                       help="turn each face so that its eyes are level (BlazeFace's landmarks)")
    faces.add_argument("--no-face", choices=NO_FACE_CHOICES, default="skip",
                       help="a photo without a face: skip it (counted in skipped.csv), or keep it whole")
    labels = parser.add_argument_group("labels and splits")
    labels.add_argument("--labels", choices=list(SCHEMES), default="affectnet8",
                        help="; ".join(f"{s.name}: {s.description}" for s in SCHEMES.values()))
    labels.add_argument("--val-fraction", type=float, default=0.1,
                        help="stratified share of training carved out as val, where the source has no val")
    labels.add_argument("--test-fraction", type=float, default=0.0,
                        help="stratified share of training carved out as test, where the source has no test")
    labels.add_argument("--group-pattern", default="", metavar="REGEX",
                        help="subject-independent splits: the group (subject) of a file is the first group "
                             "of REGEX in its name, e.g. '^(S\\d+)_' for CK+; no group spans two splits")
    labels.add_argument("--folds", type=int, default=0, help="k-fold cross-validation: fold --fold of K "
                                                             "becomes test (grouped with --group-pattern)")
    labels.add_argument("--fold", type=int, default=0, help="which fold is test, 0..K-1")
    labels.add_argument("--seed", type=int, default=0, help="seed of splits, sampling and the sample")
    balance = parser.add_argument_group("balancing")
    balance.add_argument("--balance-eval", type=int, default=0, metavar="N",
                         help="also write val_balanced/ and test_balanced/ with N images per class "
                              "(the AffectNet paper used 500); 0: no")
    balance.add_argument("--train-sampling", choices=SAMPLINGS, default="none",
                         help="rebalance training: down-sample large classes or up-sample small ones")
    balance.add_argument("--sampling-target", type=int, default=0, metavar="N",
                         help="images per class for --train-sampling (0: smallest class for down, "
                              "largest for up)")
    sample = parser.add_argument_group("built-in sample")
    sample.add_argument("--count", type=int, default=1000, help="synthetic faces to generate")
    run = parser.add_argument_group("run")
    run.add_argument("--workers", type=int, default=0, help=f"processes (0: all {os.cpu_count()} cores)")
    run.add_argument("--io-threads", type=int, default=8,
                     help="reads in flight per process: on a slow or network disk (Google Drive in Colab) "
                          "the reads overlap each other and the decoding")
    run.add_argument("--reduced-decode", action=argparse.BooleanOptionalAction, default=True,
                     help="decode a JPEG much larger than --size at 1/2, 1/4 or 1/8 scale (libjpeg's DCT "
                          "scaling): several times faster, the output within docs/data.md's stated tolerance "
                          "of a full decode")
    return parser


def parse_class_map(text: str) -> dict[str, str]:
    if isinstance(text, dict):  # from a config file
        return {str(k): str(v) for k, v in text.items()}
    pairs = [p for p in text.split(",") if p.strip()]
    if any("=" not in p for p in pairs):
        raise ValueError(f"--class-map takes FOLDER=CLASS pairs separated by commas, got {text!r}")
    return dict(tuple(s.strip() for s in p.split("=", 1)) for p in pairs)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("argument --out is required")
    try:
        config = PrepareConfig(
            source=args.source, out=Path(args.out), root=None if args.root is None else Path(args.root),
            labels=args.labels, size=args.size, margin=args.margin, val_fraction=args.val_fraction,
            test_fraction=args.test_fraction, seed=args.seed, balance_eval=args.balance_eval,
            train_sampling=args.train_sampling, sampling_target=args.sampling_target,
            class_map=parse_class_map(args.class_map), count=args.count, workers=args.workers,
            group_pattern=args.group_pattern, folds=args.folds, fold=args.fold, detect=args.detect,
            detector=args.detector, crop=args.crop, align=args.align, no_face=args.no_face,
            io_threads=args.io_threads, reduced_decode=args.reduced_decode)
        config.validate()
    except ValueError as error:
        parser.fail(error)
    try:
        summary = prepare(config)
    except ValueError as error:  # the dataset is not what --source says it is
        parser.stop(error)
    except PermissionError as error:
        parser.exit(1, f"prepare_dataset.py: error: argument --out: cannot write {error.filename}: permission "
                       f"denied\n")
    except KeyboardInterrupt:
        parser.exit(130, f"prepare_dataset.py: interrupted; finished images are kept, and the same command "
                         f"resumes into {config.out}\n")
    print(summary.report())
    print(f"Wrote {config.out}/{{train,val,test}}/, manifests, summary.json and skipped.csv")
    return 0
