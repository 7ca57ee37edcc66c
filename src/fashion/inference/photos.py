"""Read photos for a photo model (`fashion adapt`): the whole frame in colour, resized to
PHOTO_SIZE x PHOTO_SIZE, no garment search; and dataset images made the same shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fashion.inference.garment import has_plain_background, is_see_through, work_copy
from fashion.inference.images import SIZE, TRIM_TOLERANCE, read_image
from fashion.storage.classes import PHOTO_SHAPE, PHOTO_SIZE


def is_phone_photo(image: Image.Image) -> bool:
    """Say whether a decoded image is a photo of a garment somewhere (a bed, a floor), which a
    photo model reads best, rather than a 28x28 dataset image, a cut-out or a product shot on a
    plain background, which the dataset's own preprocessing reads as its authors did."""
    if image.size == (SIZE, SIZE) or image.mode[0] in "IF" or is_see_through(image):
        return False
    gray = np.asarray(Image.fromarray(work_copy(image)).convert("L"))
    return not has_plain_background(gray, TRIM_TOLERANCE)


def to_photo(image: Image.Image) -> np.ndarray:
    """Return a decoded image (`images.decode_image`) as float32 (S, S, 3) RGB in [0, 1].

    The whole frame is stretched to a square, as `keras.utils.image_dataset_from_directory`
    resizes, so nothing of the garment is cropped; transparency counts as white.
    """
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    elif image.mode[0] in "IF":  # 16-bit and float grey: convert("RGB") would clip to white
        pixels = np.asarray(image, dtype=np.float32)
        scale = 255.0 / (65535.0 if pixels.max() > 255 else 255.0)
        image = Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8))
    image = image.convert("RGB").resize((PHOTO_SIZE, PHOTO_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)


def read_photo(path: str | Path) -> np.ndarray:
    """Read one image file as a float32 (S, S, 3) RGB photo in [0, 1].

    Raises:
        InputError: the file is too large, not an image, or damaged (named).
    """
    return to_photo(read_image(path))


def read_photos(paths) -> np.ndarray:
    """Read image files into float32 (n, S, S, 3)."""
    photos = np.empty((len(paths), *PHOTO_SHAPE), np.float32)
    for i, path in enumerate(paths):
        photos[i] = read_photo(path)
    return photos


def _upscaling(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of bilinear interpolation, pixel centres aligned."""
    centres = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weights = np.zeros((n_out, n_in), np.float32)
    np.add.at(weights, (np.arange(n_out), low), 1 - (centres - low))
    np.add.at(weights, (np.arange(n_out), high), centres - low)
    return weights


def photos_from_dataset(images: np.ndarray) -> np.ndarray:
    """Return Fashion-MNIST-style images (n, 28, 28[, 1]) in [0, 1] as photos (n, S, S, 3):
    upscaled bilinearly, the grey replicated to RGB (a photo model then knows the dataset's
    classes, and answers 28x28 inputs)."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4:  # (n, 28, 28, 1)
        images = images[..., 0]
    images = images.reshape(-1, *images.shape[-2:])
    rows, cols = (_upscaling(n, PHOTO_SIZE) for n in images.shape[1:])
    grey = np.einsum("ij,njk,lk->nil", rows, images, cols, optimize=True)
    return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)

