"""The example in the docstring of each public name (issue 35: the API reference is made of them), run as
one story in a scratch folder: prepare writes data/s32, train models/s32, evaluate, export and predict read
them. The folder holds what a user brings: photo.jpg (a real face), clip.mp4 (that face for 2 s) and
photos/ (a folders tree)."""

import doctest
import inspect
import logging
import shutil

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

import affect_keras

# the order of the story: each example may use what an earlier one wrote
STORY = (
    "prepare",
    "PrepareConfig",
    "TrainConfig",
    "train",
    "EvaluateConfig",
    "evaluate",
    "format_report",
    "export",
    "load_model",
    "predict",
    "predict_video",
    "ExpressionClassifier",
    "from_preset",
    "save_preset",
    "run_study",
)
PHOTO = REPO.parent / "shared" / "data" / "muxspace_subset" / "happiness" / "Aaron_Sorkin_0002.jpg"


def test_the_story_has_every_public_name_once():
    assert sorted(STORY) == sorted(affect_keras.__all__)


def what_a_user_brings(folder, sample):
    import cv2

    shutil.copy(PHOTO, folder / "photo.jpg")
    frame = cv2.imread(str(PHOTO))
    video = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, frame.shape[1::-1])
    for _ in range(20):
        video.write(frame)
    video.release()
    for name in ("Happy", "Sad"):  # a folders tree of 15 sample faces a class
        (folder / "photos" / name).mkdir(parents=True)
        for face in sorted((sample / "train" / name).glob("*.jpg"))[:15]:
            Image.open(face).resize((96, 96)).save(folder / "photos" / name / face.name)


def test_every_public_example_runs_and_shows_what_it_says(tmp_path, monkeypatch, small_sample):
    if not PHOTO.is_file():
        pytest.skip("muxspace_subset not beside the repo")
    what_a_user_brings(tmp_path, small_sample)
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    names = {"np": np}
    report = []
    # what the examples print is checked, not the library's log (a command run earlier in this process
    # may have left its handler that prints it)
    logging.disable(logging.WARNING)
    try:
        for name in STORY:
            example = parser.get_doctest(inspect.getdoc(getattr(affect_keras, name)), names, name, None, 0)
            if not example.examples:
                report.append(f"{name}: its docstring has no example\n")
            runner.run(example, out=report.append, clear_globs=False)
            names.update(example.globs)  # the next example sees what this one made (`report`, ...)
    finally:
        logging.disable(logging.NOTSET)
    assert not report, "".join(report)
