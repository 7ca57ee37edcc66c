"""Which decoded images count as phone photos (for a photo model) and which go the dataset's
way."""

import numpy as np
from conftest import FIXTURE_PHOTOS, photo_like
from PIL import Image

from fashion.inference.images import read_image
from fashion.inference.photos import is_phone_photo


def test_phone_photos_are_told_from_dataset_images_and_product_shots():
    assert all(is_phone_photo(read_image(path)) for path in FIXTURE_PHOTOS.glob("*/*.jpg"))
    garment = np.zeros((28, 28), np.uint8)
    garment[4:24, 8:20] = 180
    assert not is_phone_photo(Image.fromarray(garment))  # 28x28: the dataset's own
    assert not is_phone_photo(photo_like(garment, np.random.default_rng(0)))  # on white
    cut_out = Image.new("RGBA", (120, 160), (0, 0, 0, 0))
    cut_out.paste((200, 30, 30, 255), (30, 30, 90, 130))
    assert not is_phone_photo(cut_out)
    opaque = read_image(next(FIXTURE_PHOTOS.glob("1/*.jpg"))).convert("RGBA")
    assert is_phone_photo(opaque)  # an alpha channel, nothing transparent: still a photo
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert is_phone_photo(Image.fromarray(noise))  # no plain border
