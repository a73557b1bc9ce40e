import pytest
from conftest import face_image, jpeg_bytes
from PIL import Image

from affect_keras.data.images import ImageError, crop_box, inside_root, load_rgb, prepare_image


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK", "RGBA", "LA", "P", "I;16"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"x.{'jpg' if mode in ('RGB', 'L', 'CMYK') else 'png'}"
    face_image(mode=mode if mode != "I;16" else "L").convert(mode).save(path)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (120, 100)


def test_transparency_is_composited_onto_black(tmp_path):
    Image.new("RGBA", (4, 4), (255, 255, 255, 0)).save(tmp_path / "clear.png")
    assert load_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (0, 0, 0)


def test_missing_corrupt_and_truncated_files_are_reasons(tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"not an image")
    (tmp_path / "truncated.jpg").write_bytes(jpeg_bytes(face_image())[:300])
    with pytest.raises(ImageError, match="missing image"):
        load_rgb(tmp_path / "nothing.jpg")
    for name in ("corrupt.jpg", "truncated.jpg"):
        with pytest.raises(ImageError, match="unreadable image"):
            load_rgb(tmp_path / name)


def test_crop_margin_is_clamped_to_the_image():
    image = face_image(size=(100, 80))
    assert crop_box(image, (10, 10, 20, 20), margin=0.5).size == (40, 40)
    assert crop_box(image, (-10, -10, 40, 40), margin=0.0).size == (30, 30)
    assert crop_box(image, (90, 70, 40, 40), margin=0.0).size == (10, 10)
    assert crop_box(image, None, margin=0.3).size == (100, 80)


@pytest.mark.parametrize("box", [(200, 10, 20, 20), (-50, 10, 20, 20), (10, 10, 0, 20)])
def test_box_off_the_image_is_a_reason(box):
    with pytest.raises(ImageError, match="face box"):
        crop_box(face_image(), box, margin=0.0)


def test_inside_root_refuses_escapes(tmp_path):
    assert inside_root(tmp_path, "a/b.jpg") == (tmp_path / "a/b.jpg").resolve()
    assert inside_root(tmp_path, "../b.jpg") is None
    assert inside_root(tmp_path, "a/../../b.jpg") is None
    assert inside_root(tmp_path, "/etc/passwd") is None


def test_prepare_image_writes_a_square_jpeg_without_temporary_files(tmp_path):
    face_image().save(tmp_path / "in.png")
    prepare_image(tmp_path / "in.png", tmp_path / "out/face.jpg", (10, 10, 50, 40), 0.1, 32)
    with Image.open(tmp_path / "out/face.jpg") as written:
        assert written.format == "JPEG" and written.size == (32, 32) and written.mode == "RGB"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["face.jpg"]


MUX = __import__("conftest").REPO.parent / "shared" / "data" / "muxspace_subset"


@pytest.mark.skipif(not MUX.is_dir(), reason="muxspace_subset not beside the repo")
@pytest.mark.parametrize("box", [None, (300, 250, 1000, 1100)])
def test_reduced_decoding_gives_the_full_decodes_face_within_the_stated_tolerance(tmp_path, box):
    """Real photos upscaled to 1,600 px, prepared at 224 px: decoded at reduced scale, the output is the
    full decode's within the README's tolerance (mean absolute difference under 1 grey level per image)."""
    import numpy as np

    from affect_keras.data.images import decode_rgb

    photos = sorted(MUX.rglob("*.jpg"))[::160][:10]
    means = []
    for k, photo in enumerate(photos):
        image = Image.open(photo).convert("RGB")
        scale = 1600 / max(image.size)
        big = tmp_path / f"{k}.jpg"
        image.resize((round(image.width * scale), round(image.height * scale))).save(big, quality=92)
        data = big.read_bytes()
        _, (sx, sy) = decode_rgb(data, at_least=lambda stored: (stored[0] * 0.2, stored[1] * 0.2))
        assert sx < 0.26 and sy < 0.26  # libjpeg really decoded at a quarter scale (sizes round up)
        outputs = {}
        for reduced in (False, True):
            prepare_image(data, tmp_path / f"{reduced}.jpg", box, 0.1, 224, reduced=reduced)
            outputs[reduced] = np.asarray(Image.open(tmp_path / f"{reduced}.jpg"), np.float32)
        assert outputs[True].shape == outputs[False].shape == (224, 224, 3)
        means.append(np.abs(outputs[True] - outputs[False]).mean())
    assert max(means) < 1.0, means
    assert np.mean(means) < 0.6, means


def test_several_reads_are_in_flight_per_worker(tmp_path, monkeypatch):
    """--io-threads: a worker keeps that many source reads waiting at once (the latency of a network disk
    overlaps), and every image is still written once."""
    import threading
    import time

    import affect_keras.data.prepare.writing as writing
    from affect_keras.data.images import read_bytes
    from affect_keras.data.prepare import PrepareConfig, prepare

    tree = tmp_path / "tree" / "happiness"
    tree.mkdir(parents=True)
    for k in range(24):
        face_image(seed=k).save(tree / f"p{k}.jpg")
    waiting, most, lock = [0], [0], threading.Lock()

    def slow(path):
        with lock:
            waiting[0] += 1
            most[0] = max(most[0], waiting[0])
        time.sleep(0.05)
        with lock:
            waiting[0] -= 1
        return read_bytes(path)

    monkeypatch.setattr(writing, "read_bytes", slow)
    for threads, expected in ((1, 1), (6, 6)):
        most[0] = 0
        summary = prepare(
            PrepareConfig(
                source="folders",
                root=tree.parent,
                out=tmp_path / f"out{threads}",
                size=32,
                val_fraction=0.0,
                workers=1,
                io_threads=threads,
            )
        )
        assert summary.written == 24 and most[0] == expected


def test_wide_grey_images_keep_their_values(tmp_path):
    """Issue 36, case 15: an int32 TIFF (mode I) of values 0-255 was divided by 256 (black: "no face
    found"); 16-bit images use their 16-bit range."""
    import numpy as np

    values = np.tile(np.arange(0, 256, 4, dtype=np.int32), (64, 1))
    Image.fromarray(values, mode="I").save(tmp_path / "int32.tif")
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "int32.tif"))[..., 0], values)
    wide = (values * 257).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "sixteen.png"))[..., 0], values)


@pytest.mark.parametrize("side", [120, 200])  # above PIL's limit (it warns) and above twice it (it raises)
def test_a_decompression_bomb_is_a_counted_skip(side, tmp_path, monkeypatch):
    """Case 5: a 20000 x 20000 PNG crashed prepare and predict; a 12000 x 12000 one printed PIL's warning.
    The limit is scaled down here (PIL's is 89.5 megapixels) so the test needs no GB-sized image."""
    import warnings

    from PIL import Image

    from affect_keras.data.images import ImageError, load_rgb

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and nothing is printed
        with pytest.raises(ImageError, match=r"image too large \(over 10,000 pixels\)"):
            load_rgb(path)
