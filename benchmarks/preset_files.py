"""Which runtime files of the shipped preset a wheel can carry: each candidate's size (on disk and deflated,
as a wheel stores it), FER+ validation accuracy and the largest probability difference to the keras model.

The candidates: the LiteRT file with float32 weights (shipped), with float16 weights (dequantised to float32
when run), the int8 variant (shipped), the ONNX file with float32 weights, and with float16 weights read
through a Cast to float32 (the computation stays float32). The keras model's own weights (float16 in
model.weights.h5) are the reference.

    python benchmarks/preset_files.py --data data/fer48 --out preset_files.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import zlib
from pathlib import Path

import numpy as np

from affect_keras.deploy.presets import _split_faces
from affect_keras.models.classifier import ExpressionClassifier
from affect_keras.models.export import with_named_outputs, write_tflite
from affect_keras.models.loading import open_onnx, open_tflite
from affect_keras.models.presets import DEFAULT_PRESET, WEIGHTS, resolve, verify


def onnx_with_float16_weights(source: Path, out: Path, smallest: int = 1024) -> Path:
    """`source` with every float32 initializer of at least `smallest` values stored as float16 and cast
    back to float32 where the graph reads it."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    casts, kept = [], []
    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype != np.float32 or values.size < smallest:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), tensor.name + "_float16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out))
    return out


def deflated(path: Path) -> int:
    return len(zlib.compress(path.read_bytes(), 6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared FER+ folder at 48 px (its val split is scored)")
    parser.add_argument("--out", default="", help="a JSON file for the table")
    args = parser.parse_args()

    folder = resolve(DEFAULT_PRESET)
    metadata = verify(folder)
    classifier = ExpressionClassifier.from_preset(folder)
    model = with_named_outputs(classifier)
    faces, labels = _split_faces(Path(args.data), "val", classifier.image_size, classifier.class_names)

    def probabilities(outputs) -> np.ndarray:
        return np.concatenate([outputs(faces[k : k + 64])["expression"] for k in range(0, len(faces), 64)])

    reference = probabilities(model.predict_on_batch)
    rows = [
        {
            "candidate": "keras (model.weights.h5, float16)",
            "bytes": (folder / WEIGHTS).stat().st_size,
            "deflated": deflated(folder / WEIGHTS),
            "accuracy": float((reference.argmax(1) == labels).mean()),
            "max_difference": 0.0,
        }
    ]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        candidates = [
            ("LiteRT float32 (model.tflite, shipped)", folder / "model.tflite", open_tflite),
            ("LiteRT float16 weights", write_tflite(model, scratch / "half.tflite", "float16"), open_tflite),
            ("LiteRT int8 (model.int8.tflite, shipped)", folder / "model.int8.tflite", open_tflite),
        ]
        onnx_file = folder / "model.onnx"
        if onnx_file.is_file():
            candidates += [
                ("ONNX float32 (model.onnx)", onnx_file, open_onnx),
                ("ONNX float16 weights", onnx_with_float16_weights(onnx_file, scratch / "half.onnx"), open_onnx),
            ]
        for name, path, opener in candidates:
            got = probabilities(opener(path, metadata).outputs)
            rows.append(
                {
                    "candidate": name,
                    "bytes": path.stat().st_size,
                    "deflated": deflated(path),
                    "accuracy": float((got.argmax(1) == labels).mean()),
                    "max_difference": float(np.abs(got - reference).max()),
                }
            )
            print(rows[-1], flush=True)
    print(f"FER+ validation, {len(faces)} faces")
    print("| candidate | MB | MB deflated | accuracy | largest probability difference to keras |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['candidate']} | {row['bytes'] / 1e6:.1f} | {row['deflated'] / 1e6:.1f} | "
            f"{row['accuracy']:.4f} | {row['max_difference']:.2g} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"faces": len(faces), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
