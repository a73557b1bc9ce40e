"""Knowing when not to answer, measured: predict.py on real photos in class folders, at several
--min-confidence floors, the accuracy of the faces it answers and the share it answers.

predict.py runs once over the folder (--min-confidence 0: every face's probabilities in its CSV); the
largest face of each photo is scored against its folder's label. A floor P answers the faces whose top
probability is at least P, which is what `--min-confidence P` does (the benchmark checks that on its
middle floor with a second predict.py run over the same folder). Photos without a face are neither
answered nor counted in the accuracy; the table says how many there are.

    python benchmarks/risk_coverage.py --root ../shared/data/muxspace_subset --out risk_coverage
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FLOORS = (0.0, 0.5, 0.7, 0.9)
REPO = Path(__file__).resolve().parents[1]


def predictions(root: Path, csv: Path, model: str, floor: float) -> pd.DataFrame:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "predict.py"),
            str(root),
            "--model",
            model,
            "--csv",
            str(csv),
            "--min-confidence",
            str(floor),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return pd.read_csv(csv)


def largest_faces(table: pd.DataFrame, root: Path) -> pd.DataFrame:
    """One row per photo with a face (its largest), with its folder's class (affectnet8 names)."""
    from affect_keras.data.sources import folders
    from affect_keras.labels import get_scheme

    scheme = get_scheme("affectnet8")
    truth = {Path(r.path).resolve(): scheme.class_of(r.code) for r in folders.read(root) if hasattr(r, "code")}
    faces = table[table["face"].notna()].copy()  # the CSV names each file relative to the folder given
    faces["area"] = faces["width"] * faces["height"]
    faces = faces.sort_values("area", ascending=False).drop_duplicates("file")
    faces["truth"] = faces["file"].map(lambda f: truth.get((root / f).resolve()))
    return faces[faces["truth"].notna()]


def curve(faces: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    probabilities = faces[[f"p_{n}" for n in names]].to_numpy()
    predicted = np.array(names)[probabilities.argmax(1)]
    correct = predicted == faces["truth"].to_numpy()
    confidence = probabilities.max(1)
    rows = []
    for floor in np.round(np.linspace(0, 0.99, 100), 2):
        answered = confidence >= floor
        rows.append(
            {
                "min_confidence": floor,
                "answered": float(answered.mean()),
                "accuracy": float(correct[answered].mean()) if answered.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="class-folder tree of photos")
    parser.add_argument("--model", default="ferplus_resnet18_48")
    parser.add_argument("--out", type=Path, default=Path("risk_coverage"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from affect_keras.models.loading import load

    names = load(args.model).class_names
    table = predictions(args.root, args.out / "predictions.csv", args.model, 0.0)
    photos = table["file"].nunique()
    faces = largest_faces(table, args.root)
    whole = curve(faces, names)
    rows = []
    for floor in FLOORS:
        row = whole.iloc[int(round(floor * 100))]
        rows.append(
            {
                "--min-confidence": floor,
                "faces answered": f"{row['answered']:.3f}",
                "accuracy of the answered": f"{row['accuracy']:.3f}",
                "answered / photos": int(round(row["answered"] * len(faces))),
            }
        )
    # the floor as predict.py applies it: the status column of a run at the middle floor
    middle = FLOORS[len(FLOORS) // 2]
    gated = largest_faces(predictions(args.root, args.out / f"predictions_{middle}.csv", args.model, middle), args.root)
    answered = (gated["status"] == "ok").mean()
    assert abs(answered - whole.iloc[int(round(middle * 100))]["answered"]) < 1e-9, (answered, middle)
    result = {"model": args.model, "photos": int(photos), "photos with a face": int(len(faces)), "table": rows}
    (args.out / "risk_coverage.json").write_text(json.dumps(result, indent=1))
    whole.to_csv(args.out / "curve.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    axis.plot(whole["answered"], whole["accuracy"], color="#4c72b0")
    for floor in FLOORS:
        row = whole.iloc[int(round(floor * 100))]
        axis.plot(row["answered"], row["accuracy"], "o", color="#dd8452")
        axis.annotate(f"P={floor}", (row["answered"], row["accuracy"]), textcoords="offset points", xytext=(4, 4))
    axis.set(
        xlabel="share of faces answered (coverage)",
        ylabel="accuracy of the answered faces",
        title=f"{args.model} on {args.root.name}\n({len(faces)} photos with a face, predict.py)",
        xlim=(0, 1.02),
    )
    axis.grid(alpha=0.3)
    figure.savefig(args.out / "risk_coverage.png", dpi=120)
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(f"{photos} photos, {len(faces)} with a face; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
