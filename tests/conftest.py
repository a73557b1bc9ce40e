"""Shared fixtures: small datasets in each source's own layout, built on the fly."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# `python -c BLOCK_TENSORFLOW <train.py arguments>`: train.py with TensorFlow unimportable
BLOCK_TENSORFLOW = """
import sys

class NoTensorFlow:  # as if TensorFlow were not installed, like on the JAX machines
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"No module named {name!r}")

sys.meta_path.insert(0, NoTensorFlow())
from affect_keras.cli.train import main
sys.exit(main(sys.argv[1:]))
"""
# a fresh interpreter that imports the package and keras and nothing else, then keras's own loader
LOAD_WITH_KERAS_ALONE = """
import sys
import numpy as np
import affect_keras
import keras
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
out = model.predict(np.load(sys.argv[2]), verbose=0)
out = out if isinstance(out, dict) else {"expression": out}
np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in out.items()})
"""


def loads_with_keras_alone(checkpoint, faces, tmp_path) -> dict:
    """{head: outputs} of `checkpoint` on `faces`, loaded by keras.saving.load_model(safe_mode=True) in a
    fresh interpreter that imported only affect_keras and keras."""
    import os
    import subprocess
    import sys

    np.save(tmp_path / "faces.npy", faces)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_WITH_KERAS_ALONE,
            str(checkpoint),
            str(tmp_path / "faces.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(tmp_path / "out.npz"))


FERPLUS = Path(__import__("os").environ.get("AFFECT_KERAS_FERPLUS", REPO.parent / "shared/data/ferplus"))
LANDMARKS = "".join(f"{x}.0;{y}.0;" for x, y in zip(range(68), range(68)))


def face_image(size=(120, 100), mode="RGB", seed=0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def affectnet_row(rel, code, box=(10, 10, 60, 60), valence=0.5, arousal=-0.25):
    return [rel, *box, LANDMARKS, code, valence, arousal]


@pytest.fixture
def affectnet_original(tmp_path) -> Path:
    """An original-release tree holding one of each problem real AffectNet copies have."""
    root = tmp_path / "affectnet"
    images = root / "Manually_Annotated_Images"
    (images / "1").mkdir(parents=True)
    (images / "2").mkdir()
    face_image().save(images / "1/good.jpg")
    face_image(mode="CMYK", seed=1).save(images / "1/cmyk.jpg")
    face_image(mode="RGBA", seed=2).save(images / "2/alpha.png")
    face_image(seed=3).save(images / "2/noaffect.jpg")
    face_image(seed=4).save(images / "2/offbox.jpg")
    face_image(seed=5).save(images / "2/uncertain.jpg")
    (images / "2/corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (images / "2/truncated.jpg").write_bytes(jpeg_bytes(face_image(seed=6))[:400])
    face_image(seed=7).save(tmp_path / "outside.jpg")
    for k in range(3):
        face_image(seed=10 + k).save(images / f"1/val{k}.jpg")
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir()
    training = [
        affectnet_row("1/good.jpg", 1),
        affectnet_row("1/cmyk.jpg", 2),
        affectnet_row("2/alpha.png", 3),
        affectnet_row("2/noaffect.jpg", 0, valence=-2, arousal=-2),
        affectnet_row("2/offbox.jpg", 4, box=(500, 500, 60, 60)),
        affectnet_row("2/uncertain.jpg", 9, valence=-2, arousal=-2),
        affectnet_row("2/corrupt.jpg", 5),
        affectnet_row("2/truncated.jpg", 6),
        affectnet_row("2/missing.jpg", 7),
        affectnet_row("../outside.jpg", 1),
        ["1/short.jpg", 1, 2, 3],
        affectnet_row("1/good.jpg", "happy"),
    ]
    with open(lists / "training.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "subDirectory_filePath",
                "face_x",
                "face_y",
                "face_width",
                "face_height",
                "facial_landmarks",
                "expression",
                "valence",
                "arousal",
            ]
        )
        writer.writerows(training)
    with open(lists / "validation.csv", "w", newline="") as handle:  # shipped without a header
        csv.writer(handle).writerows([affectnet_row(f"1/val{k}.jpg", k) for k in range(3)])
    return root


@pytest.fixture
def affectnet_newer(tmp_path) -> Path:
    """A newer-release tree: cropped images with one .npy file per annotation."""
    root = tmp_path / "affectnet_new"
    for folder, ids in (("train_set", range(0, 4)), ("val_set", range(10, 12))):
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "annotations").mkdir()
        for i in ids:
            face_image(size=(64, 64), seed=i).save(root / folder / "images" / f"{i}.jpg")
            notes = {"exp": str(i % 8), "val": "0.25", "aro": "-0.5", "lnd": LANDMARKS}
            if i == 2:
                notes["val"] = "-2"
            if i == 3:
                del notes["aro"]
            for key, value in notes.items():
                np.save(root / folder / "annotations" / f"{i}_{key}.npy", np.array(value))
    return root


def tiny_flags(data) -> list[str]:
    """train.py's flags of the tests' tiny runs: ResNet18 from scratch at 32 px on the prepared folder `data`."""
    return ["--data", str(data), "--backbone", "resnet18", "--weights", "none", "--image-size", "32"]


# train.py's flags for a linear head on the backbone: what the README recommends from scratch
LINEAR_HEAD = ["--dense=", "--dropout", "0", "--no-head-batch-norm", "--l2", "0"]


def sideways(upright: Image.Image, path) -> None:
    """`upright` stored a quarter turn round with the EXIF orientation tag (6) that tells viewers to turn
    it back, as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)


def user_files(folder: Path) -> dict:
    """{relative path: bytes} of every file under `folder`: what a command must leave as it was."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


MUX = REPO.parent / "shared" / "data" / "muxspace_subset"
FACE_PHOTO = MUX / "happiness" / "Aaron_Sorkin_0002.jpg"  # a real photo of one face (clips.CONFIDENT's first)
needs_mux = pytest.mark.skipif(not MUX.is_dir(), reason="muxspace_subset not beside the repo")


def face_clip(path: Path, frames: int = 12, fps: int = 6) -> None:
    """A clip (benchmarks/clips.py) of `FACE_PHOTO` drifting right across a grey room."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from clips import Actor, write_clip

    write_clip(path, [Actor("A", FACE_PHOTO, 200, lambda k: (100 + 4 * k, 120))], frames, fps)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """A real photograph with one face (scikit-image's astronaut) and a blank image, as PNG files."""
    data = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(folder / "blank.png")
    return folder


@pytest.fixture
def crops(tiny_run, tmp_path):
    """A folder of six prepared faces (predict --no-detect reads them whole)."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for k, path in enumerate(sorted((tiny_run / "data" / "test").rglob("*.jpg"))[:6]):
        Image.open(path).save(folder / f"face{k}.jpg")
    return folder


def one_line_error(capsys) -> str:
    """What a command printed on its standard error, which must be one line."""
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    return message


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """200 sample faces at 32 px (train/val/test), prepared once for every test that only reads them."""
    from affect_keras.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("small_sample")
    prepare(PrepareConfig(source="sample", out=out, count=200, size=32))
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A one-epoch ResNet18 run on a small sample at 32 px (root/data, root/run), shared by the evaluation,
    export and predict tests: the numbers do not matter there, the files do."""
    from affect_keras.cli.train import main as train
    from affect_keras.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("tiny_run")
    prepare(PrepareConfig(source="sample", out=root / "data", count=200, size=32, balance_eval=5))
    assert (
        train(
            [
                *tiny_flags(root / "data"),
                "--epochs",
                "1",
                "--run-dir",
                str(root / "run"),
                "--augment",
                "strong",
                # the from-scratch head the README recommends: the default one (dense + BatchNorm) saturates
                # to one class after a single epoch, which leaves nothing for the TTA test to compare
                *LINEAR_HEAD,
            ]
        )
        == 0
    )
    return root


@pytest.fixture(scope="session")
def multitask_run(tiny_run, tmp_path_factory) -> Path:
    """A one-epoch expression + valence/arousal run on the tiny run's data (export and predict tests)."""
    from affect_keras.cli.train import main as train

    out = tmp_path_factory.mktemp("multitask") / "run"
    assert (
        train(
            [
                *tiny_flags(tiny_run / "data"),
                "--epochs",
                "1",
                "--task",
                "multitask",
                "--augment",
                "basic",
                "--run-dir",
                str(out),
                *LINEAR_HEAD,
            ]
        )
        == 0
    )
    return out


def build_model(
    backbone: str,
    num_classes: int,
    size: int,
    weights: str | None = None,
    augment: str = "none",
    dense=(256,),
    seed: int | None = None,
    stem: str | None = None,
    task: str = "expression",
    class_names=None,
    dropout: float = 0.3,
    head_batch_norm: bool = True,
    l2: float = 1e-4,
):
    """A training model as train.py builds one: an ExpressionClassifier of `num_classes` classes (named
    `class_names`, else C0, C1, ...), its backbone started from `weights` (None, "imagenet" or a classifier
    artifact) and frozen when pretrained, wrapped by the `augment` block."""
    from affect_keras.models.build import load_pretrained, training_model
    from affect_keras.models.classifier import ExpressionClassifier

    names = list(class_names) if class_names is not None else [f"C{k}" for k in range(num_classes)]
    if stem is None and weights not in (None, "imagenet"):
        from affect_keras.models.loading import classifier_settings

        stem = classifier_settings(weights)["stem"]
    classifier = ExpressionClassifier(
        backbone,
        names,
        size,
        stem=stem,
        task=task,
        dense=list(dense),
        dropout=dropout,
        head_batch_norm=head_batch_norm,
        l2=l2,
        pretrained=weights is not None,
    )
    if weights is not None:
        load_pretrained(classifier, weights)
        classifier.backbone.trainable = False
    return training_model(classifier, augment, seed)


# `make test` runs two pytest-xdist workers with `--dist loadgroup --no-loadscope-reorder`: each module
# folder's file goes to one worker whole (its module fixtures are built once), each end-to-end test alone,
# in this order: the longest first (tests by name, files by file name; from `make test`'s durations, in
# seconds on the 2-core machine), then the other end-to-end tests, then the other files. A long test
# started last would keep one worker busy while the other has nothing left to do.
LONGEST_FIRST = (
    "test_cache.py",  # 230 in all
    "test_export.py",  # 200
    "test_models.py",  # 190
    "test_pretrained.py",  # 170
    "test_runtime.py",  # 145: the wheel built and installed on four Pythons, the training extra
    "test_distribute.py",  # 130
    "test_the_notebook_runs_on_the_sample_and_shows_its_figures",  # 102
    "test_a_killed_run_resumes_and_ends_where_an_uninterrupted_run_does",  # 94
    "test_prepare.py",  # 80
    "test_a_multitask_model_learns_valence_arousal_and_keeps_the_expression_accuracy",  # 80
    "test_the_shipped_preset_reproduces_its_fer_validation_scores",  # 78
    "test_bench_measures_every_path",  # 76
    "test_the_readme_tour_runs",  # 76
    "test_the_study_trains_every_strategy_once_and_writes_table_7",  # 72
    "test_every_public_example_runs_and_shows_what_it_says",  # 56
    "test_every_task_trains_logs_its_monitors_and_evaluates",  # 2 x 40
)
E2E = Path(__file__).parent / "e2e"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if E2E in item.path.parents:  # whole commands and minutes-long runs: `make quick` leaves them out
            item.add_marker(pytest.mark.slow)
        else:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}

    def order(item):
        listed = rank.get(item.originalname, rank.get(item.path.name))
        return listed if listed is not None else len(rank) + (E2E not in item.path.parents)

    items.sort(key=order)  # stable: the order within a file stays
