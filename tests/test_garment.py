"""`fashion.inference.garment`: a garment is found on a busy background, plain ones left alone."""

import io

import numpy as np
import pytest
from PIL import Image

from fashion.inference import garment
from fashion.inference.images import TRIM_TOLERANCE, open_image, to_fashion_mnist


def _photo(rng, size=(300, 400), with_garment=True):
    """A red garment shape on a noisy, striped background like a wooden floor."""
    width, height = size
    stripes = (np.arange(width) // 12 % 2 * 30 + 120).astype(np.float32)
    floor = np.stack([stripes + 30, stripes, stripes - 40], -1)[None].repeat(height, 0)
    floor += rng.normal(0, 8, floor.shape)
    pixels = np.clip(floor, 0, 255).astype(np.uint8)
    if with_garment:
        pixels[80:330, 90:210] = (200, 30, 40)  # the body
        pixels[80:140, 40:260] = (200, 30, 40)  # the sleeves
    return Image.fromarray(pixels)


def test_the_garment_is_found_on_a_textured_background():
    rng = np.random.default_rng(0)
    mask = garment.find_garment(garment.work_copy(_photo(rng)))
    expected = np.zeros(mask.shape, bool)
    scale = mask.shape[0] / 400
    expected[round(80 * scale):round(330 * scale), round(90 * scale):round(210 * scale)] = True
    expected[round(80 * scale):round(140 * scale), round(40 * scale):round(260 * scale)] = True
    overlap = (mask & expected).sum() / (mask | expected).sum()
    assert overlap > 0.9, overlap


def test_a_photo_is_drawn_light_on_black_within_the_tone_range():
    pixels = to_fashion_mnist(_photo(np.random.default_rng(1)))
    assert pixels.shape == (28, 28)
    assert pixels[-1, 0] == 0.0 and pixels[-1, -1] == 0.0  # black beside the body
    assert pixels[:, 14].min() > 0.3  # the body fills the height
    inside = pixels[pixels > 0.05]
    low, high = garment.TONE_RANGE
    assert low - 0.1 < np.median(inside) < high + 0.05


def test_plain_backgrounds_with_a_garment_and_cut_outs_take_the_dataset_path():
    plain = Image.new("RGB", (120, 160), (250, 250, 250))
    plain.paste((30, 30, 30), (30, 20, 90, 140))
    assert garment.photo_garment(plain, True, TRIM_TOLERANCE) is None
    cut_out = Image.new("RGBA", (120, 160), (0, 0, 0, 0))
    cut_out.paste((30, 30, 30, 255), (30, 20, 90, 140))
    assert garment.photo_garment(cut_out, True, TRIM_TOLERANCE) is None


def test_nothing_is_found_in_a_textured_surface_without_a_garment():
    floor = _photo(np.random.default_rng(2), with_garment=False)
    drawn = garment.photo_garment(floor, True, TRIM_TOLERANCE)
    assert drawn is not None and drawn.max() == 0.0  # answered "not sure" by the predictor


def test_exif_orientation_is_respected():
    photo = _photo(np.random.default_rng(3))
    upright = to_fashion_mnist(photo)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    photo.rotate(90, expand=True).save(buffer, "JPEG", quality=95, exif=exif)
    turned = to_fashion_mnist(open_image(buffer.getvalue(), "turned.jpg"))
    assert np.abs(turned - upright).mean() < 0.05


@pytest.mark.parametrize("invert", [True, False])
def test_draw_garment_negates_unless_told_not_to(invert):
    gray = np.full((10, 10), 200, np.uint8)
    gray[2:8, 2:8] = 20
    gray[4:6, 4:6] = 120
    mask = gray < 200
    drawn = garment.draw_garment(gray, mask, invert)
    assert drawn.shape == (6, 6)
    assert (drawn[0, 0] > drawn[2, 2]) == invert  # dark cloth light when negated


def test_a_blank_wall_is_drawn_black_even_with_a_plain_border():
    rng = np.random.default_rng(4)
    rows, cols = np.mgrid[0:300, 0:400]
    wall = np.stack([200 + 20 * cols / 400, 190 + 20 * rows / 300, 180 + 0 * rows], -1)
    wall = np.clip(wall + rng.normal(0, 3, wall.shape), 0, 255).astype(np.uint8)
    drawn = garment.photo_garment(Image.fromarray(wall), True, TRIM_TOLERANCE)
    assert drawn is not None and drawn.max() == 0.0
