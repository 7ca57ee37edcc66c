"""Classify image files: read them safely, preprocess them as Fashion-MNIST's authors made their
images, and score them in batches through a traced forward pass."""

from __future__ import annotations

import io
import os
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fashion import CLASS_NAMES, NUM_CLASSES
from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    ModelError,
    UnsupportedInputError,
)

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
BATCH_SIZE = 1024
IMAGE_HINT = "pass a PNG, JPEG, BMP, GIF, WebP or TIFF image"
FORMATS_HINT = f"{IMAGE_HINT}, or a .npy array of 28x28 images"


def default_model_path() -> Path:
    """Return where the model shipped with the package lives (it may be absent in a checkout)."""
    return Path(str(resources.files("fashion") / "models" / "default.keras"))


def load_model(path: str | os.PathLike | None = None):
    """Load a saved `.keras` classifier of 28x28x1 images into 10 classes, safely.

    Raises:
        ModelError: the file is missing, is not a Keras model, or has the wrong shapes.
    """
    path = Path(path) if path else default_model_path()
    if not path.is_file():
        if path == default_model_path():
            raise ModelError(f"the shipped model {path} is missing; reinstall fashion or pass "
                             "--model with a .keras file written by `fashion run`")
        raise ModelError(f"model file {path} does not exist; pass --model with a .keras file "
                         "written by `fashion run`")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for files that are not models.
        raise ModelError(f"{path} is not a Keras model ({type(e).__name__}: {e}); pass a "
                         ".keras file written by `fashion run`") from e
    shapes = (tuple(model.input_shape), tuple(model.output_shape))
    if shapes != ((None, SIZE, SIZE, 1), (None, NUM_CLASSES)):
        raise ModelError(f"{path} maps {shapes[0]} to {shapes[1]}, expected (None, 28, 28, 1) "
                         "to (None, 10); pass a Fashion-MNIST classifier")
    return model


class Predictor:
    """A model with a traced forward pass: a call costs one graph execution, not the data
    adapter, callbacks and progress bar that `Model.predict` sets up on every call."""

    def __init__(self, model, batch_size: int = BATCH_SIZE):
        self.model = model
        self.batch_size = batch_size
        self._forward = _traced_forward(model)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Return softmax outputs (n, 10) of float32 images (n, 28, 28[, 1]) in [0, 1]."""
        images = np.asarray(images, dtype=np.float32).reshape(-1, SIZE, SIZE, 1)
        chunks = [self._forward(images[i:i + self.batch_size])
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)


def _traced_forward(model):
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(model(x, training=False))
    import tensorflow as tf

    # One trace for every batch size; XLA is left off: it recompiles per batch size on CPU.
    spec = tf.TensorSpec((None, SIZE, SIZE, 1), tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return lambda x: forward(x).numpy()


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
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InputTooLargeError(f"{name} has {width}x{height} pixels, over the limit of "
                                 f"{MAX_PIXELS:,} (a decompression bomb?); scale it down")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # Pillow's decoders use all four
        raise CorruptInputError(f"{name} is a truncated or damaged {image.format} image ({e}); "
                                "export it again") from e
    return image


def to_fashion_mnist(image: Image.Image, invert: str = "auto") -> np.ndarray:
    """Return a float32 (28, 28) array in [0, 1]: a light garment centred on black.

    As the dataset's authors did: grayscale, invert when the background is light (`invert`:
    auto|always|never), trim the edges of background colour, fit the longest side to 28 keeping
    the aspect ratio, and centre on a black 28x28 canvas. An image already 28x28 is taken as
    fitted: trimming and refitting it again would only blur and shift it.
    """
    pixels = np.asarray(_to_gray(image), dtype=np.float32)
    background = _border_level(pixels)
    if invert == "always" or (invert == "auto" and background > 127.5):
        pixels, background = 255.0 - pixels, 255.0 - background
    if pixels.shape == (SIZE, SIZE):
        return pixels / 255.0
    pixels = _trim(pixels, background)
    # The dataset's background is exactly 0 and its garments span the full range: match both.
    span = max(float(pixels.max()) - background, 1.0)
    pixels = np.clip((pixels - background) / span, 0.0, 1.0)
    fitted = ImageOps.pad(Image.fromarray(pixels), (SIZE, SIZE),
                          method=Image.Resampling.LANCZOS, color=0.0)
    return np.clip(np.asarray(fitted, dtype=np.float32), 0.0, 1.0)


def _to_gray(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
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


def collect_inputs(paths: list[Path]) -> list[Path]:
    """Expand folders (recursively, sorted) into the image and .npy files they hold."""
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in (*IMAGE_SUFFIXES, ARRAY_SUFFIX))
            if not found:
                raise InputError(f"folder {path} holds no image or .npy files; {FORMATS_HINT}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path} does not exist; check the path")
    return files


def load_inputs(paths: list[Path], invert: str = "auto") -> tuple[list[str], np.ndarray]:
    """Read and preprocess every input before any is scored, so a bad file stops the run early.

    Returns a name per image (`file.npy[i]` for images inside an array of several) and a
    float32 (n, 28, 28) array.
    """
    names, images = [], []
    for path in collect_inputs(paths):
        if path.suffix.lower() == ARRAY_SUFFIX:
            array_names, array = read_array_file(path)
            names += array_names
            images.append(array)
        else:
            names.append(str(path))
            images.append(read_image_file(path, invert)[np.newaxis])
    return names, np.concatenate(images)


def top_classes(probabilities: np.ndarray, k: int = 3) -> list[dict]:
    """Return the k most probable classes of one softmax output, best first."""
    best = np.argsort(probabilities)[::-1][:k]
    return [{"class_id": int(i), "label": CLASS_NAMES[i], "probability": float(probabilities[i])}
            for i in best]


def predictions(names: list[str], probabilities: np.ndarray, k: int = 3) -> list[dict]:
    """Return `[{"file": name, "top": [...]}, ...]` in input order."""
    return [{"file": name, "top": top_classes(p, k)}
            for name, p in zip(names, probabilities, strict=True)]


def format_table(results: list[dict]) -> str:
    """Return results as an aligned text table: the file, then its top classes."""
    if not results:
        return ""
    rows = [[r["file"]] + [f"{t['label']} {t['probability']:.2f}" for t in r["top"]]
            for r in results]
    k = max(len(r["top"]) for r in results)
    header = ["file"] + [f"top-{i + 1}" for i in range(k)]
    widths = [max(len(row[c]) for row in [header, *rows] if c < len(row))
              for c in range(k + 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
                     for row in [header, *rows])
