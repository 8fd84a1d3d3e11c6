"""JoyTag pre-processing: compositing, padding, mode conversion and bad files, pinned on pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from lib_tagger.interrogate.images import (  # noqa: E402
    CLIP_MEAN,
    CLIP_STD,
    ImageLoadError,
    pad_square,
    prepare_image,
    preprocess,
    preprocess_file,
    to_rgb,
)


def pixel(image: Image.Image, xy) -> tuple:
    return tuple(image.getpixel(xy))


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (2, 1))
    image.putpixel((0, 0), (255, 0, 0, 128))  # half red over white
    image.putpixel((1, 0), (10, 20, 30, 0))  # fully transparent: white, whatever the colour
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    # 255*128/255 + 255*127/255 = 255 ; 0*128/255 + 255*127/255 = 127
    assert pixel(rgb, (0, 0)) == (255, 127, 127)
    assert pixel(rgb, (1, 0)) == (255, 255, 255)


def test_la_is_composited_on_white():
    image = Image.new("LA", (1, 1), (0, 64))
    # 0*64/255 + 255*(255-64)/255 = 191
    assert pixel(to_rgb(image), (0, 0)) == (191, 191, 191)


def test_palette_transparency_is_composited_on_white():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    rgb = to_rgb(image)
    assert pixel(rgb, (0, 0)) == (255, 255, 255)
    assert pixel(rgb, (1, 0)) == (0, 255, 0)


def test_cmyk_bilevel_and_grey_become_rgb():
    assert pixel(to_rgb(Image.new("CMYK", (1, 1), (0, 255, 255, 0))), (0, 0)) == (255, 0, 0)
    assert pixel(to_rgb(Image.new("1", (1, 1), 1)), (0, 0)) == (255, 255, 255)
    assert pixel(to_rgb(Image.new("L", (1, 1), 77)), (0, 0)) == (77, 77, 77)


def test_sixteen_bit_and_float_are_scaled_not_clipped():
    sixteen = Image.new("I;16", (1, 1), 32896)  # 32896 / 257 = 128
    assert pixel(to_rgb(sixteen), (0, 0)) == (128, 128, 128)
    wide = Image.new("I", (1, 1), 65535)
    assert pixel(to_rgb(wide), (0, 0)) == (255, 255, 255)
    unit = Image.new("F", (1, 1), 0.5)
    assert pixel(to_rgb(unit), (0, 0)) == (128, 128, 128)


def test_pad_square_centres_on_white():
    image = Image.new("RGB", (4, 1), (0, 0, 0))
    square = pad_square(image)
    assert square.size == (4, 4)
    # offset (4 - 1)//2 = 1: rows 0, 2, 3 white, row 1 black
    rows = np.asarray(square)[:, 0, 0].tolist()
    assert rows == [255, 0, 255, 255]
    tall = pad_square(Image.new("RGB", (1, 3), (0, 0, 0)))
    assert np.asarray(tall)[0, :, 0].tolist() == [255, 0, 255]


def test_448_square_is_not_resized_and_is_normalised():
    array = np.random.default_rng(0).integers(0, 256, size=(448, 448, 3), dtype=np.uint8)
    tensor = preprocess(Image.fromarray(array, "RGB"))
    assert tensor.shape == (3, 448, 448) and tensor.dtype == torch.float32
    expected = (array[5, 7, 1] / 255.0 - CLIP_MEAN[1]) / CLIP_STD[1]
    assert tensor[1, 5, 7].item() == pytest.approx(expected, abs=1e-5)


def test_small_image_is_padded_then_resized():
    image = Image.new("RGB", (100, 50), (0, 0, 0))
    prepared = prepare_image(image)
    assert prepared.size == (448, 448)
    top = np.asarray(prepared)[:100]  # the padded band above the image stays pure white
    assert (top == 255).all()
    assert (np.asarray(prepared)[224] == 0).all()


@pytest.mark.parametrize("size", [(1, 1), (8000, 100), (100, 8000)])
def test_extreme_sizes(size):
    image = Image.new("RGB", size, (0, 0, 0))
    prepared = prepare_image(image)
    assert prepared.size == (448, 448)
    array = np.asarray(prepared)
    if size == (8000, 100):
        assert (array[0] == 255).all() and (array[224] < 20).all()


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as image:
        image.seek(1)
        prepared = prepare_image(image)
    red, green, blue = pixel(prepared, (200, 200))
    assert red > 200 and blue < 50


def test_truncated_png_fails_with_a_clear_error(tmp_path):
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError) as info:
        preprocess_file(path)
    assert str(path) in str(info.value) and "truncated or corrupt" in info.value.reason


def test_text_file_named_png_fails_with_a_clear_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, not an image")
    with pytest.raises(ImageLoadError, match="not an image Pillow can read"):
        preprocess_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageLoadError, match="gone.png: file not found"):
        preprocess_file(tmp_path / "gone.png")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "I;16", "1", "L", "I", "F"])
def test_every_mode_gives_a_448_tensor(mode):
    tensor = preprocess(Image.new(mode, (30, 20)))
    assert tensor.shape == (3, 448, 448) and torch.isfinite(tensor).all()
