import pytest
from PIL import Image

from affect_keras.data.images import ImageError, crop_box, inside_root, load_rgb, prepare_image
from conftest import face_image, jpeg_bytes


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
