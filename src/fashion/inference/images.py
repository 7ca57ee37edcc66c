"""Read image files and arrays safely, and preprocess them as Fashion-MNIST's authors made their
images: grayscale, background trimmed, fitted to 28x28, a light garment on black."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from fashion.inference.garment import photo_garment
from fashion.storage.photo_folder import IMAGE_SUFFIXES  # noqa: F401  predict's folders

SIZE = 28
# Pillow's names of the formats we read, and the file suffixes a folder is searched for.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
ARRAY_SUFFIX = ".npy"
MAX_BYTES = 20 * 2**20  # an image file: larger than any phone photo
MAX_ARRAY_BYTES = 512 * 2**20  # a .npy file: 100,000 float32 images fit
# Decoded size cap against decompression bombs: above a 48 MP phone photo, below Pillow's own
# DecompressionBombWarning (89 MP), so ours is the check that fires.
MAX_PIXELS = 50_000_000
INVERT_CHOICES = ("auto", "always", "never")
# Fashion-MNIST's authors trimmed edges within 5% of the maximum intensity of the corner colour.
TRIM_TOLERANCE = 0.05 * 255
# Decoding work and memory grow with the pixels, so a large image is brought down to about this
# many pixels on its shorter side right after it is decoded (a box reduce by a whole factor):
# 9x the 28-pixel output, so a garment that fills a ninth of the photo's width stays sharp.
DECODED_SIDE = 256
# JPEG's decoder scales by 1/2, 1/4 or 1/8 as it reads (Pillow's `draft`), filtering as a resize
# does, so it may go lower: this cut a 400x400 JPEG's cost to the service by a quarter (1.5 ms).
DRAFT_SIDE = 128
# Pillow's `reduce` cannot average these modes: what each is converted to first.
REDUCE_CONVERSIONS = {"1": "L", "P": "RGB", "PA": "RGB", "I;16": "I", "I;16B": "I",
                      "I;16L": "I", "I;16N": "I"}
# Pillow's documented limit on the text chunks of one PNG (64 MiB by default, which a 64 KB file
# of zTXt chunks reaches) held while its header is read; we never use the text: 1 MiB in all.
PNG_TEXT_MEMORY = PngImagePlugin.MAX_TEXT_CHUNK
IMAGE_HINT = "pass a PNG, JPEG, BMP, GIF, WebP or TIFF image"
FORMATS_HINT = f"{IMAGE_HINT}, or a .npy array of 28x28 images"


def open_image(data: bytes, name: str) -> Image.Image:
    """Decode image bytes, refusing anything that is not a sane image of a known format.

    A large image comes back shrunk to about `DECODED_SIDE` pixels on its shorter side (see
    `read_image_header`); everything after decoding costs the same for a 48 MP photo as for a
    1 MP one.

    Raises:
        InputError: a subclass naming what is wrong with `name` and how to fix it.
    """
    return decode_image(read_image_header(data, name), name)


def read_image_header(data: bytes, name: str) -> Image.Image:
    """Read an image's header only: check its bytes, format and size; decode nothing yet.

    A JPEG is told to decode at 1/2, 1/4 or 1/8 scale when it is that many times larger than
    `DRAFT_SIDE` (Pillow's `draft`: the decoder skips the detail), so its `size` is already the
    reduced one. `decode_bytes` of the result says what decoding it will allocate.

    Raises:
        InputError: a subclass naming what is wrong with `name` and how to fix it.
    """
    if not data:
        raise EmptyInputError(f"{name} is empty (0 bytes); {IMAGE_HINT}")
    if len(data) > MAX_BYTES:
        raise InputTooLargeError(f"{name} has {len(data):,} bytes, over the limit of "
                                 f"{MAX_BYTES:,}; scale the image down")
    try:
        with _png_text_limit():
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise InputTooLargeError(f"{name} is a decompression bomb ({e}); scale it down") from e
    except UnidentifiedImageError as e:
        raise UnsupportedInputError(f"{name} is not an image; {IMAGE_HINT}") from e
    except Exception as e:  # see decode_image: any exception here means damaged bytes
        raise CorruptInputError(f"{name} is a damaged image ({_describe(e)}); "
                                "export it again") from e
    if image.format not in IMAGE_FORMATS:
        raise UnsupportedInputError(f"{name} is a {image.format} image; {IMAGE_HINT}")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InputTooLargeError(f"{name} has {width}x{height} pixels, over the limit of "
                                 f"{MAX_PIXELS:,} (a decompression bomb?); scale it down")
    if image.format == "JPEG":
        image.draft(image.mode, (DRAFT_SIDE, DRAFT_SIDE))
    return image


_text_limit_lock = threading.Lock()
_text_limit_users = 0
_text_limit_saved = None


@contextlib.contextmanager
def _png_text_limit():
    """Lower Pillow's PNG text limit to PNG_TEXT_MEMORY while fashion decodes, and put back the
    process's own value once no decode of fashion's runs: Pillow reads it from a module global,
    and other code in the process (a notebook's own PNGs) keeps its default."""
    global _text_limit_users, _text_limit_saved
    with _text_limit_lock:
        if _text_limit_users == 0:
            _text_limit_saved = PngImagePlugin.MAX_TEXT_MEMORY
            PngImagePlugin.MAX_TEXT_MEMORY = min(PNG_TEXT_MEMORY, _text_limit_saved)
        _text_limit_users += 1
    try:
        yield
    finally:
        with _text_limit_lock:
            _text_limit_users -= 1
            if _text_limit_users == 0:
                PngImagePlugin.MAX_TEXT_MEMORY = _text_limit_saved


def decode_bytes(image: Image.Image) -> int:
    """Return about how many bytes `decode_image` allocates for an image from
    `read_image_header`: the decoded pixels, plus a converted copy where shrinking needs one."""
    pixels = image.width * image.height
    if image.mode in ("1", "L"):
        return pixels * 2
    if image.mode in ("P", "PA") or image.mode.startswith("I;16"):
        return pixels * 6
    return pixels * 4  # Pillow keeps every other mode in 4 bytes a pixel


def decode_image(image: Image.Image, name: str) -> Image.Image:
    """Decode an image from `read_image_header`, shrink it to about `DECODED_SIDE` and turn it
    upright as the camera held it (EXIF orientation).

    Raises:
        CorruptInputError: the data is truncated or damaged, in the pixels or in the EXIF.
        InputTooLargeError: there is not the memory to decode it.
    """
    kind = image.format
    try:
        with _png_text_limit():
            image.load()
        image = _shrink(image)
        # Upright as the camera held it; damaged EXIF fails here, with the damaged data.
        image = ImageOps.exif_transpose(image)
    except MemoryError as e:
        raise InputTooLargeError(f"{name} is too large to decode in the memory available; "
                                 "scale it down") from e
    except Exception as e:
        # Pillow's decoders raise OSError, SyntaxError, ValueError and EOFError on bad data,
        # and its pure-Python parsers whatever they trip on (struct.error from EXIF, IndexError,
        # TypeError...). They parse untrusted bytes, so any exception out of them means bad
        # data; tests/test_images.py fuzzes them.
        raise CorruptInputError(f"{name} is a truncated or damaged {kind} image "
                                f"({_describe(e)}); export it again") from e
    return image


def _shrink(image: Image.Image) -> Image.Image:
    """Box-average by a whole factor down to about DECODED_SIDE on the shorter side."""
    factor = min(image.size) // DECODED_SIDE
    if factor < 2:
        return image
    if image.mode in REDUCE_CONVERSIONS:  # averaging palette indices or bits means nothing
        target = REDUCE_CONVERSIONS[image.mode]
        image = image.convert("RGBA" if target == "RGB" and image.has_transparency_data
                              else target)
    return image.reduce(factor)


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__


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


def read_image(path: str | Path) -> Image.Image:
    """Read and decode one image file (`open_image`), refusing an oversize file unread.

    Raises:
        InputError: the file is too large, not an image, or damaged (named).
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:  # checked before reading, so a huge file costs nothing
        raise InputTooLargeError(f"{path} has {size:,} bytes, over the limit of {MAX_BYTES:,}; "
                                 "scale the image down")
    return open_image(path.read_bytes(), str(path))


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
