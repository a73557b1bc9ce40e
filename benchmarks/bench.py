"""Benchmark: where frozen-backbone training spends its time, measured in one process on the same data.

    python benchmarks/bench.py --size 224 --images 256 --out bench.json

prints a table and writes JSON of images/s for: decoding the prepared JPEGs on each input path
(FaceBatches, tf.data); per backbone, a frozen-backbone training epoch without the cache, the one-time
cache build, and a head epoch on cached features; the project's training step on each input path against
a plain keras model of the same backbone and head fed from memory; and predictions of the exported
SavedModel, TFLite and ONNX models. Steady-state figures: training figures leave out the first epoch
(compilation, the first JPEG decoding), and the cached head and decoding figures run over enough rows
(--head-rows, --decode-rows) that per-epoch set-up does not dominate. Ratios between rows are what
carries over to other machines.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_BACKBONES = ("vgg16", "efficientnetb3", "resnet18", "mobilenetv2")
STEP_EPOCHS = 4  # frozen epochs from files: the median of epochs 2-4 is reported
DECODE_PASSES = 5  # decoding: passes per input path, taking turns, the median reported
STEP_ROUNDS = 5  # training-step comparison: epochs per variant, interleaved, the median reported


def _rate(images: int, seconds: float) -> float:
    return images / max(seconds, 1e-9)


def _steady_rate(images: int, epoch_seconds: list[float]) -> float:
    """images/s of the median epoch after the first (which compiles and fills the in-memory caches)."""
    return _rate(images, statistics.median(epoch_seconds[1:]))


def _epoch_timer():
    """A keras callback recording each epoch's wall time in `.seconds` (keras imported only when used)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        seconds: list[float] = []

        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def decode_rates(
    data: Path, names: list[str], size: int, batch: int, rows: int, passes: int = DECODE_PASSES
) -> tuple[dict[str, float], float | None]:
    """Decoding `rows` training JPEGs (the split's files repeated, already in the OS cache): FaceBatches
    (each batch's images on its two threads) and the tf.data path (`affect_keras.data.tfdata`) streaming
    them from the files. The paths take turns, `passes` times each, and the median pass is reported: a
    single pass varied by up to 1.5x on the development machine. FaceBatches' first pass (colder, as at the
    start of training) is reported apart. Also returned: the median time from starting a tf.data epoch to its
    first batch, in milliseconds (drawing the order, starting the iterator, the first batch's decoding), which
    every epoch pays once and which the images/s figure includes: hence the default of 8,192 rows, like a small
    epoch."""
    from affect_keras.data.loader import FaceBatches

    faces = FaceBatches(data, "train", names, size, batch)
    faces.repeat(max(1, -(-rows // len(faces.files))))  # every row decoded: the in-memory copy is dropped
    for path in set(faces.files):
        Path(path).read_bytes()

    def face_batches():  # as fit reads it: batch after batch, each decoded on FaceBatches' two threads
        for index in range(len(faces)):
            faces[index]

    paths, first_batch = {"FaceBatches": face_batches}, []
    try:
        from affect_keras.data.tfdata import image_batches

        dataset = image_batches(faces)  # streamed from the files: repeat() keeps nothing decoded
        for _ in dataset.take(1):  # functions traced before the clock starts
            pass

        def tf_data():
            start, batches = time.perf_counter(), iter(dataset)
            next(batches)
            first_batch.append(time.perf_counter() - start)
            for _ in batches:
                pass

        paths["tf.data"] = tf_data
    except ImportError:  # no TensorFlow
        pass
    seconds = {name: [] for name in paths}
    for _ in range(passes):
        for name, decode in paths.items():
            start = time.perf_counter()
            decode()
            seconds[name].append(time.perf_counter() - start)
    rates = {"FaceBatches, first pass": _rate(len(faces.files), seconds["FaceBatches"][0])}
    rates.update({name: _rate(len(faces.files), statistics.median(times)) for name, times in seconds.items()})
    if "tf.data" in rates:
        rates["tf.data / FaceBatches"] = rates["tf.data"] / rates["FaceBatches"]
    return rates, (1000 * statistics.median(first_batch) if first_batch else None)


BACKBONE_FILE = "backbone.weights.h5"  # the benchmark's random "pretrained" backbone, shared by its models


def _frozen(backbone: str, names: list[str], size: int, work: Path, linear: bool = False):
    """A classifier on a frozen backbone with random "pretrained" weights (no download): drawn once with
    seed 0 and kept in work/<backbone>/, so every model of the run starts from the same backbone; `linear`:
    the head is one dense layer, as the plain keras model's."""
    import keras

    from affect_keras.models.classifier import ExpressionClassifier

    keras.utils.set_random_seed(0)
    head = dict(dense=[], dropout=0.0, head_batch_norm=False, l2=0.0) if linear else {}
    model = ExpressionClassifier(backbone, names, size, stem="imagenet", pretrained=True, **head)
    path = work / backbone / BACKBONE_FILE
    if path.is_file():
        model.backbone.load_weights(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        model.backbone.save_weights(path)
    model.backbone.trainable = False
    return model


def frozen_vs_cached(
    backbone: str, data: Path, names: list[str], size: int, batch: int, epochs: int, head_rows: int, work: Path
) -> dict[str, float]:
    """images/s of a frozen-backbone epoch (on the default input path), of building the cache, and of a
    head epoch on the cache as train.py runs it. The head epoch is timed over `head_rows` rows (the
    cache tiled): on a few hundred images it lasts milliseconds and would time keras's per-epoch set-up,
    not the head."""
    import numpy as np

    from affect_keras.data.loader import EpochOrder, FaceBatches
    from affect_keras.data.serving import resolve_pipeline, serve
    from affect_keras.training.cache import CachedBatches, cache_keys, cached_features, split_model
    from affect_keras.training.run import HEAD_STEPS_PER_EXECUTION

    model = _frozen(backbone, names, size, work)
    faces = FaceBatches(data, "train", names, size, batch, shuffle=True)
    n = len(faces.files)

    model.compile("adam", "categorical_crossentropy", jit_compile="auto")
    timer = _epoch_timer()
    model.fit(
        serve(faces, resolve_pipeline("auto")), epochs=2, verbose=0, shuffle=False, callbacks=[EpochOrder(faces), timer]
    )
    uncached = _rate(n, timer.seconds[-1])

    keys = cache_keys(model, backbone, "imagenet", "avg", 0, {"train": (faces, "none", 1)})
    start = time.perf_counter()
    features = cached_features(model, faces, keys["train"], work / "cache", log=lambda *_: None)
    build = _rate(n, time.perf_counter() - start)
    _, head = split_model(model)
    head.compile("adam", "categorical_crossentropy", jit_compile="auto", steps_per_execution=HEAD_STEPS_PER_EXECUTION)
    tiles = max(1, -(-head_rows // n))
    rows = FaceBatches(data, "train", names, size, batch, shuffle=True)
    rows.repeat(tiles)
    timer = _epoch_timer()
    head.fit(
        CachedBatches(rows, np.tile(features, (1, tiles, 1))),
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[EpochOrder(rows), timer],
    )
    cached = _rate(len(rows.files), timer.seconds[-1])
    return {
        "frozen epoch, uncached": uncached,
        "cache build (once)": build,
        "head epoch, cached": cached,
        "cached / uncached": cached / uncached,
    }


def own_vs_plain(backbone: str, data: Path, names: list[str], size: int, batch: int, work: Path) -> dict:
    """The project's model on its input paths (tf.data where TensorFlow runs, FaceBatches) against a plain
    keras model (same backbone and head) fed float arrays from memory: all train the head on a frozen
    backbone, uncached, from images already decoded in memory. One epoch of each in turn, STEP_ROUNDS
    times, the median per variant: interleaving keeps a slow minute of the machine from landing on one
    variant only."""
    import keras
    import numpy as np

    from affect_keras.data.loader import EpochOrder, FaceBatches
    from affect_keras.data.serving import resolve_pipeline, serve
    from affect_keras.models.backbones import build_backbone, get_backbone
    from affect_keras.models.preprocessing import BackbonePreprocessing

    faces = FaceBatches(data, "train", names, size, batch, shuffle=True)
    images = np.stack([faces.image(i) for i in range(len(faces.files))])  # also fills FaceBatches' cache
    n = len(images)
    path = work / backbone / BACKBONE_FILE
    ours = _frozen(backbone, names, size, work, linear=True)
    ours.compile("adam", "categorical_crossentropy", jit_compile="auto")
    variants = {
        f"project ({p})": (ours, (serve(faces, p),), dict(shuffle=False, callbacks=[EpochOrder(faces)]))
        for p in dict.fromkeys([resolve_pipeline("auto"), "pydataset"])
    }

    net = build_backbone(backbone, (size, size, 3), None, "imagenet")
    net.load_weights(path)
    net.trainable = False
    inputs = keras.Input((size, size, 3))
    x = BackbonePreprocessing(get_backbone(backbone).preprocessing)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(net(x, training=False))
    plain = keras.Model(inputs, keras.layers.Dense(len(names), activation="softmax")(x))
    plain.compile("adam", "categorical_crossentropy", jit_compile="auto")
    variants["plain keras, from memory"] = (plain, (images.astype("float32"), faces.targets), dict(batch_size=batch))
    seconds = {name: [] for name in variants}
    for round_ in range(STEP_ROUNDS + 1):  # round 0 compiles and warms up, untimed
        for name, (model, inputs, options) in variants.items():
            options = {**options, "callbacks": [*options.get("callbacks", []), _epoch_timer()]}
            model.fit(*inputs, initial_epoch=round_, epochs=round_ + 1, verbose=0, **options)
            seconds[name].append(options["callbacks"][-1].seconds[-1])
    rates = {name: _steady_rate(n, times) for name, times in seconds.items()}
    default = rates[f"project ({resolve_pipeline('auto')})"]
    return {"backbone": backbone, **rates, "project / plain": default / rates["plain keras, from memory"]}


def end_to_end(backbone: str, data: Path, names: list[str], size: int, batch: int, work: Path) -> dict:
    """Frozen-backbone epochs (uncached) decoding every JPEG from its file every epoch, as a split too
    large for memory (AffectNet at 224 px: 43 GB decoded) trains: FaceBatches against tf.data."""
    from affect_keras.data.loader import EpochOrder, FaceBatches

    model = _frozen(backbone, names, size, work)
    model.compile("adam", "categorical_crossentropy", jit_compile="auto")
    faces = FaceBatches(data, "train", names, size, batch, shuffle=True, keep_decoded=False)  # every epoch decodes
    inputs = {"pydataset": faces}
    try:
        from affect_keras.data.tfdata import image_batches

        inputs["tf.data"] = image_batches(faces)  # streamed too (keep_decoded=False)
    except ImportError:  # no TensorFlow
        pass
    rates = {}
    for pipeline, served in inputs.items():
        timer = _epoch_timer()
        model.fit(served, epochs=STEP_EPOCHS, verbose=0, shuffle=False, callbacks=[EpochOrder(faces), timer])
        rates[pipeline] = _steady_rate(len(faces.files), timer.seconds)
    if "tf.data" in rates:
        rates["tf.data / pydataset"] = rates["tf.data"] / rates["pydataset"]
    return {"backbone": backbone, **rates}


def export_rates(backbone: str, data: Path, size: int, batch: int, work: Path) -> dict[str, float]:
    """Predictions per second of each exported format, on the validation images."""
    import numpy as np

    from affect_keras.data.loader import FaceBatches
    from affect_keras.data.table import read_summary
    from affect_keras.models.export import export
    from affect_keras.litert import tflite_interpreter
    from affect_keras.training.config import TrainConfig
    from affect_keras.training.run import train

    run = work / "export_run"
    train(
        TrainConfig(
            data=str(data),
            run_dir=str(run),
            backbone=backbone,
            weights="none",
            image_size=size,
            augment="none",
            epochs=1,
            batch_size=batch,
            cache_dir=str(work / "cache"),
        ),
        verbose=0,
    )
    paths = export(run, ["saved_model", "tflite", "onnx"])
    names = read_summary(data)["class_names"]
    val = FaceBatches(data, "val", names, size, batch)
    images = np.stack([val.image(i) for i in range(len(val.files))])
    rates = {}
    import tensorflow as tf

    loaded = tf.saved_model.load(str(paths["saved_model"]))
    rates["SavedModel"] = _timed(lambda x: loaded.serve(tf.constant(x))["expression"].numpy(), images, batch)
    interpreter = tflite_interpreter(paths["tflite"], threads=2)

    def tflite(x):
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    rates["TFLite"] = _timed(tflite, images, batch)
    try:
        import onnxruntime
    except ImportError:
        return rates
    session = onnxruntime.InferenceSession(str(paths["onnx"]))
    name = session.get_inputs()[0].name
    rates["ONNX (onnxruntime)"] = _timed(lambda x: session.run(None, {name: x})[0], images, batch)
    return rates


def _timed(predict, images, batch: int) -> float:
    predict(images[:batch])  # warm-up
    start = time.perf_counter()
    for k in range(0, len(images), batch):
        predict(images[k : k + batch])
    return _rate(len(images), time.perf_counter() - start)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    what = parser.add_argument_group("what to measure")
    what.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES), metavar="NAME")
    what.add_argument("--size", type=int, default=224, help="image side, pixels")
    what.add_argument("--images", type=int, default=256, help="training images (sample faces) per measurement")
    what.add_argument("--batch-size", type=int, default=32)
    what.add_argument("--head-epochs", type=int, default=3, help="cached head epochs; the last is timed")
    what.add_argument(
        "--decode-rows",
        type=int,
        default=8192,
        help="JPEGs each input path decodes for its figure (the training files repeated)",
    )
    what.add_argument(
        "--head-rows",
        type=int,
        default=16384,
        help="rows a timed cached head epoch runs over (the cache tiled to steady state)",
    )
    what.add_argument(
        "--compare-backbone",
        default="mobilenetv2",
        help="backbone of the own-vs-plain comparison and of the exported models",
    )
    where = parser.add_argument_group("data and output")
    where.add_argument(
        "--data", help="a prepared dataset (default: the built-in sample, prepared in a temporary folder at --size)"
    )
    where.add_argument("--out", default="bench.json", help="JSON results")
    args = parser.parse_args(argv)

    from affect_keras.models.backbones import BACKBONES

    unknown = [b for b in args.backbones + [args.compare_backbone] if b not in BACKBONES]
    if unknown:
        parser.error(f"argument --backbones: unknown {', '.join(unknown)}; choose from {', '.join(BACKBONES)}")
    if args.size < 32 or args.images < 2 * args.batch_size:
        parser.error("argument --size must be >= 32 and --images at least twice --batch-size")

    import keras
    from tabulate import tabulate

    from affect_keras.data.table import read_summary
    from affect_keras.data.prepare import PrepareConfig, prepare

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else work / "data"
        if not args.data:  # count is before the sample's 8 % val split and its unlabelled faces
            prepare(PrepareConfig(source="sample", out=data, count=int(args.images * 1.25), size=args.size))
        names = read_summary(data)["class_names"]
        decoding, first_batch_ms = decode_rates(data, names, args.size, args.batch_size, args.decode_rows)
        results = {
            "size": args.size,
            "batch_size": args.batch_size,
            "backend": keras.backend.backend(),
            "input images/s": decoding,
            "tf.data epoch, first batch after (ms)": first_batch_ms,
            "backbones": {},
        }
        for backbone in dict.fromkeys(args.backbones + [args.compare_backbone]):
            results["backbones"][backbone] = frozen_vs_cached(
                backbone, data, names, args.size, args.batch_size, args.head_epochs, args.head_rows, work
            )
        results["training step"] = own_vs_plain(args.compare_backbone, data, names, args.size, args.batch_size, work)
        results["frozen epoch from files"] = end_to_end(
            args.compare_backbone, data, names, args.size, args.batch_size, work
        )
        results["predict images/s"] = export_rates(args.compare_backbone, data, args.size, args.batch_size, work)

    print(f"\nInput ({args.size} px), images/s")
    print(tabulate(results["input images/s"].items(), headers=["path", "images/s"], floatfmt=".2f"))
    if first_batch_ms is not None:
        print(f"A tf.data epoch's first batch came after {first_batch_ms:.0f} ms (included above).")
    print("\nFrozen backbone, images/s")
    rows = [
        [b, r["frozen epoch, uncached"], r["cache build (once)"], r["head epoch, cached"], r["cached / uncached"]]
        for b, r in results["backbones"].items()
    ]
    print(
        tabulate(
            rows, headers=["backbone", "uncached epoch", "cache build", "cached head epoch", "ratio"], floatfmt=".1f"
        )
    )
    step = dict(results["training step"])
    print(f"\nTraining step ({step.pop('backbone')}, frozen, uncached, images/s or ratio)")
    print(tabulate(step.items(), headers=["", ""], floatfmt=".2f"))
    files = dict(results["frozen epoch from files"])
    print(f"\nFrozen epoch decoding every JPEG from its file ({files.pop('backbone')}, images/s or ratio)")
    print(tabulate(files.items(), headers=["", ""], floatfmt=".2f"))
    print("\nExported model predictions, images/s")
    print(tabulate(results["predict images/s"].items(), headers=["format", "images/s"], floatfmt=".0f"))
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
