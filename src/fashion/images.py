"""Read image files and arrays safely, and preprocess them as Fashion-MNIST's authors made their
images: grayscale, background trimmed, fitted to 28x28, a light garment on black."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from fashion.garment import photo_garment

SIZE = 28
# Pillow's names of the formats we read, and the file suffixes a folder is searched for.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ARRAY_SUFFIX = ".npy"
MAX_BYTES = 20 * 2**20  # an image file: larger than any phone photo
MAX_ARRAY_BYTES = 512 * 2**20  # a .npy file: 100,000 float32 images fit
# Decoded size cap against decompression bombs: above a 48 MP phone photo, below Pillow's own
# DecompressionBombWarning (89 MP), so ours is the check that fires.
MAX_PIXELS = 50_000_000
INVERT_CHOICES = ("auto", "always", "never")
# Fashion-MNIST's authors trimmed edges within 5% of the maximum intensity of the corner colour.
TRIM_TOLERANCE = 0.05 * 255
IMAGE_HINT = "pass a PNG, JPEG, BMP, GIF, WebP or TIFF image"
FORMATS_HINT = f"{IMAGE_HINT}, or a .npy array of 28x28 images"


def open_image(data: bytes, name: str) -> Image.Image:
    """Decode image bytes fully, refusing anything that is not a sane image of a known format.

    Raises:
        InputError: a subclass naming what is wrong with `name` and how to fix it.
    """
    if not data:
        raise EmptyInputError(f"{name} is empty (0 bytes); {IMAGE_HINT}")
    if len(data) > MAX_BYTES:
        raise InputTooLargeError(f"{name} has {len(data):,} bytes, over the limit of "
                                 f"{MAX_BYTES:,}; scale the image down")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise InputTooLargeError(f"{name} is a decompression bomb ({e}); scale it down") from e
    except UnidentifiedImageError as e:
        raise UnsupportedInputError(f"{name} is not an image; {IMAGE_HINT}") from e
    if image.format not in IMAGE_FORMATS:
        raise UnsupportedInputError(f"{name} is a {image.format} image; {IMAGE_HINT}")
    width, height, kind = *image.size, image.format
    if width * height > MAX_PIXELS:
        raise InputTooLargeError(f"{name} has {width}x{height} pixels, over the limit of "
                                 f"{MAX_PIXELS:,} (a decompression bomb?); scale it down")
    try:
        image.load()
        # Upright as the camera held it; damaged EXIF fails here, with the damaged data.
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # Pillow's decoders use all four
        raise CorruptInputError(f"{name} is a truncated or damaged {kind} image ({e}); "
                                "export it again") from e
    return image


def to_fashion_mnist(image: Image.Image, invert: str = "auto") -> np.ndarray:
    """Return a float32 (28, 28) array in [0, 1]: a light garment centred on black.

    As the dataset's authors did: grayscale, invert when the background is light (`invert`:
    auto|always|never), trim the edges of background colour, fit the longest side to 28 keeping
    the aspect ratio, and centre on a black 28x28 canvas. An image already 28x28 is taken as
    fitted: trimming and refitting it again would only blur and shift it. A photo whose
    background is not plain goes through `garment.photo_garment` instead (found, cropped,
    negated unless `invert` is never).
    """
    if image.size != (SIZE, SIZE):
        garment = photo_garment(image, invert != "never", TRIM_TOLERANCE)
        if garment is not None:
            return _fit(garment)
    pixels = np.asarray(_to_gray(image), dtype=np.float32)
    background = _border_level(pixels)
    if invert == "always" or (invert == "auto" and background > 127.5):
        pixels, background = 255.0 - pixels, 255.0 - background
    if pixels.shape == (SIZE, SIZE):
        return pixels / 255.0
    pixels = _trim(pixels, background)
    # The dataset's background is exactly 0 and its garments span the full range: match both.
    span = max(float(pixels.max()) - background, 1.0)
    return _fit(np.clip((pixels - background) / span, 0.0, 1.0))


def _fit(pixels: np.ndarray) -> np.ndarray:
    """Fit float pixels in [0, 1] to 28 on their longest side, centred on black."""
    fitted = ImageOps.pad(Image.fromarray(pixels), (SIZE, SIZE),
                          method=Image.Resampling.LANCZOS, color=0.0)
    return np.clip(np.asarray(fitted, dtype=np.float32), 0.0, 1.0)


def _to_gray(image: Image.Image) -> Image.Image:
    if image.mode[0] in "IF":
        # 16-bit and float grayscale: Pillow's convert("L") clips them to white, so scale.
        pixels = np.asarray(image, dtype=np.float32)
        scale = 255.0 / (65535.0 if pixels.max() > 255 else 255.0)
        return Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8))
    if image.has_transparency_data:
        # A cut-out garment: its transparent surroundings count as a white background.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("L")


def _border_level(pixels: np.ndarray) -> float:
    """The background's gray level: the median of the outermost pixels (the authors used a
    corner pixel; the median of the whole border is robust to one noisy corner)."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(border))


def _trim(pixels: np.ndarray, background: float) -> np.ndarray:
    mask = np.abs(pixels - background) > TRIM_TOLERANCE
    if not mask.any():
        return pixels  # a blank image: nothing to trim to
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def read_image_file(path: Path, invert: str = "auto") -> np.ndarray:
    """Read and preprocess one image file into a float32 (28, 28) array."""
    size = path.stat().st_size
    if size > MAX_BYTES:  # checked before reading, so a huge file costs nothing
        raise InputTooLargeError(f"{path} has {size:,} bytes, over the limit of {MAX_BYTES:,}; "
                                 "scale the image down")
    return to_fashion_mnist(open_image(path.read_bytes(), str(path)), invert)


def read_array_file(path: Path) -> tuple[list[str], np.ndarray]:
    """Read a .npy of Fashion-MNIST-style images, taken as they are (light garment on black).

    Accepts shapes (28, 28), (n, 28, 28) and (n, 28, 28, 1); uint8 in 0..255 or floats in
    [0, 1]. Returns a name per image (`file.npy[i]` when it holds a batch) and float32
    (n, 28, 28) images.
    """
    size = path.stat().st_size
    if size == 0:
        raise EmptyInputError(f"{path} is empty (0 bytes); {FORMATS_HINT}")
    if size > MAX_ARRAY_BYTES:
        raise InputTooLargeError(f"{path} has {size:,} bytes, over the limit of "
                                 f"{MAX_ARRAY_BYTES:,} for arrays; split it into smaller files")
    try:  # memory-mapped: shape and dtype are checked before any data is read
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UnsupportedInputError(f"{path} is not a NumPy .npy array ({e}); "
                                    f"{FORMATS_HINT}") from e
    images = scale_array(array, str(path))
    names = [str(path)] if array.ndim == 2 else [f"{path}[{i}]" for i in range(len(images))]
    return names, images


def scale_array(array: np.ndarray, name: str) -> np.ndarray:
    """Check the shape and value range of Fashion-MNIST-style images; return float32 (n, 28, 28)."""
    shape = array.shape
    if shape[-1:] == (1,) and array.ndim == 4:
        array = array[..., 0]
    if array.shape[-2:] != (SIZE, SIZE) or array.ndim not in (2, 3):
        raise UnsupportedInputError(f"{name} holds an array of shape {shape}; expected (28, 28), "
                                    "(n, 28, 28) or (n, 28, 28, 1)")
    images = np.asarray(array).reshape(-1, SIZE, SIZE)
    if not len(images):
        raise EmptyInputError(f"{name} holds no images; pass at least one 28x28 image")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if images.dtype.kind not in "fiu":
        raise UnsupportedInputError(f"{name} holds {images.dtype} values; expected uint8 in "
                                    "0..255 or floats in [0, 1]")
    images = images.astype(np.float32)
    if not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
        raise UnsupportedInputError(f"{name} holds values outside [0, 1]; scale floats to [0, 1] "
                                    "or save uint8 pixels")
    return images
