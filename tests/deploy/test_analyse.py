"""`affect_keras.predict` (`deploy.analyse`) as a program calls it: any image it may be handed, converted or
refused on one line, and a model whose files change is loaded again."""

import shutil

import numpy as np
import pytest
from PIL import Image

import affect_keras


@pytest.fixture
def face(tiny_run):
    """A prepared 32 px face as an (h, w, 3) uint8 array."""
    return np.asarray(Image.open(next((tiny_run / "data" / "test").rglob("*.jpg"))).convert("RGB"))


def test_every_array_form_of_an_image_is_converted_or_refused(face):
    """Cases 16 and 27: a float array in [0, 1] found no face; grey, RGBA, int64, empty and 4-D arrays
    failed deep inside or answered wrongly."""
    from affect_keras.deploy.analyse import as_rgb

    grey = face.mean(axis=-1).astype(np.uint8)
    same = {
        "float [0, 1]": face / 255.0,
        "float 0-255": face.astype(np.float32),
        "int64": face.astype(np.int64),
        "RGBA": np.dstack([face, np.full(face.shape[:2], 255, np.uint8)]),
        "PIL": Image.fromarray(face),
    }
    for name, image in same.items():
        np.testing.assert_array_equal(as_rgb(image), face, err_msg=name)
    np.testing.assert_array_equal(as_rgb(grey), np.dstack([grey] * 3))
    np.testing.assert_array_equal(as_rgb(grey[..., None]), np.dstack([grey] * 3))
    for bad, words in (
        (face[None], "one .h, w, 3. RGB array"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (face.astype(np.int64) * 4, "values run from"),
        (face - 300.0, "values run from"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (face.astype(bool), "bool"),
    ):
        with pytest.raises(ValueError, match=words):
            as_rgb(bad)
    for bad in (None, b"bytes", [1, 2, 3]):
        with pytest.raises(TypeError, match="image must be a path, a PIL image or an"):
            as_rgb(bad)
    with pytest.raises(ValueError, match="nope.jpg: missing image"):  # case 32: the path is named
        as_rgb("nope.jpg")


def test_predict_answers_the_same_face_in_any_form(tiny_run, face):
    """A float [0, 1] copy of a face gets the same answer as the uint8 face (it found no face before)."""
    model = str(tiny_run / "run")
    expected = affect_keras.predict(face, model=model, detector=None)
    for image in (face / 255.0, Image.fromarray(face), face.mean(axis=-1).astype(np.uint8)[..., None].repeat(3, -1)):
        found = affect_keras.predict(image, model=model, detector=None)
        assert len(found) == 1
    found = affect_keras.predict(face / 255.0, model=model, detector=None)
    assert found[0]["probabilities"] == pytest.approx(expected[0]["probabilities"], abs=1e-5)


def test_a_model_replaced_on_disk_is_loaded_again(tiny_run, multitask_run, face, tmp_path):
    """Case 10: `predict(model=PATH)` kept a path's model for the whole process, also after the folder
    was replaced or deleted."""
    from affect_keras.models.loading import ModelFileError

    folder = tmp_path / "model"
    shutil.copytree(tiny_run / "run", folder, ignore=shutil.ignore_patterns("backup", "logs", "evaluation-*"))
    assert "va" not in affect_keras.predict(face, model=str(folder), detector=None)[0]
    shutil.rmtree(folder)
    with pytest.raises(ModelFileError):
        affect_keras.predict(face, model=str(folder), detector=None)
    shutil.copytree(multitask_run, folder, ignore=shutil.ignore_patterns("backup", "logs", "evaluation-*"))
    assert "va" in affect_keras.predict(face, model=str(folder), detector=None)[0]  # the new model answers
