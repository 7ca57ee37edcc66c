"""Classify images: load a model once, score preprocessed images in batches through a traced
forward pass (or ONNX Runtime), and shape the answers as tables or JSON."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fashion.errors import InputError, ModelError
from fashion.inference.calibrate import Calibration, load_calibration
from fashion.inference.images import (
    ARRAY_SUFFIX,
    FORMATS_HINT,
    SIZE,
    read_array_file,
    read_image_file,
)
from fashion.inference.model_files import check_shapes, load_model, resolve_model_path
from fashion.inference.photos import photos_from_dataset, read_photo
from fashion.storage.classes import CLASS_NAMES, INPUT_SHAPE, NUM_CLASSES, PHOTO_SHAPE
from fashion.storage.photo_folder import IMAGE_SUFFIXES

# Images per forward pass: big enough to amortise the per-call cost, small enough for any RAM.
BATCH_SIZE = 1024


class Predictor:
    """A model behind a fast forward pass: a call costs one graph execution, not the data
    adapter, callbacks and progress bar that `Model.predict` sets up on every call.

    `model` is a Keras model, or the path of an `.onnx` file (from `fashion export`) to run
    with ONNX Runtime, the fastest on CPU (see the README's figures). `calibration` rescales
    its answers and says when it is not sure (default: as the model says, always sure). The
    forward pass is built on first use; `warm_up` builds it now, so that a service's first
    request is not the slow one.

    A photo model (`fashion adapt`: input `PHOTO_SHAPE`) takes photos, and 28x28 dataset
    images too, made photos (`fashion.inference.photos.photos_from_dataset`).
    """

    def __init__(self, model, batch_size: int = BATCH_SIZE,
                 calibration: Calibration = Calibration()):  # noqa: B008  frozen, so shareable
        self.model, self.batch_size, self.calibration = model, batch_size, calibration
        self._forward, self._shape = None, None

    def warm_up(self) -> Predictor:
        self.probabilities(np.zeros((1, SIZE, SIZE)))
        return self

    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image the model takes: `INPUT_SHAPE`, or `PHOTO_SHAPE` for a photo
        model. Builds the forward pass if it is not built yet."""
        if self._forward is None:
            model = self.model
            is_onnx = isinstance(model, (str, os.PathLike)) and str(model).endswith(".onnx")
            self._forward, self._shape = (_onnx_forward(Path(model)) if is_onnx
                                          else _traced_forward(model))
        return self._shape

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Return softmax outputs (n, 10) of float32 images in [0, 1]: (n, 28, 28[, 1]), or
        (n, S, S, 3) photos for a photo model."""
        shape = self.input_shape()
        images = np.asarray(images, dtype=np.float32)
        if shape == PHOTO_SHAPE and images.shape[-3:] != PHOTO_SHAPE:
            images = photos_from_dataset(images)
        images = images.reshape(-1, *shape)
        chunks = [self._forward(images[i:i + self.batch_size])
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def answers(self, images: np.ndarray, threshold: float | None = None):
        """Return calibrated probabilities (n, 10) and a "not sure" flag per image; `threshold`
        overrides the calibration's."""
        return self.calibrate(self.probabilities(images), images, threshold)

    def calibrate(self, probabilities: np.ndarray, images: np.ndarray,
                  threshold: float | None = None):
        """`answers` for probabilities already computed (the service batches requests)."""
        calibration = self.calibration
        if threshold is not None:
            calibration = Calibration(calibration.temperature, threshold)
        calibrated = calibration.apply(probabilities)
        return calibrated, calibration.not_sure(calibrated, images)


def load_predictor(path: str | os.PathLike | None = None) -> Predictor:
    """Load a `.keras` model (default: the shipped one) or an exported `.onnx` model, with the
    calibration saved beside it, if any."""
    path = resolve_model_path(path)
    return Predictor(path if path.suffix == ".onnx" else load_model(path),
                     calibration=load_calibration(path)).warm_up()


def _traced_forward(model):
    """A forward pass of a Keras model, and the shape of one image it takes."""
    import keras

    shape = tuple(model.input_shape[1:])
    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(model(x, training=False)), shape
    import tensorflow as tf

    # One trace for every batch size; XLA is left off: it recompiles per batch size on CPU.
    spec = tf.TensorSpec((None, *shape), tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return (lambda x: forward(x).numpy()), shape


def _onnx_forward(path: Path):
    try:
        import onnxruntime
    except ImportError as e:
        raise ModelError(f"running {path} needs ONNX Runtime: pip install onnxruntime, or pass "
                         "a .keras model") from e
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own unexported exception types.
        raise ModelError(f"{path} is not an ONNX model ({e}); pass a file written by "
                         "`fashion export --format onnx`") from e
    [inputs], [outputs] = session.get_inputs(), session.get_outputs()
    check_shapes(path, inputs.shape, outputs.shape)
    shape = PHOTO_SHAPE if tuple(inputs.shape[1:]) == PHOTO_SHAPE else INPUT_SHAPE
    return (lambda x: session.run(None, {inputs.name: x})[0]), shape  # run() is thread-safe


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


def load_inputs(paths: list[Path], invert: str = "auto", track=lambda files: files,
                input_shape: tuple[int, int, int] = INPUT_SHAPE) -> tuple[list[str], np.ndarray]:
    """Read and preprocess every input before any is scored, so a bad file stops the run early.

    `track` wraps the list of files as it is read, e.g. in a progress bar. Returns a name per
    image (`file.npy[i]` for images inside an array of several) and float32 images: (n, 28, 28)
    as the dataset's preprocessing makes them, or, for `input_shape` `PHOTO_SHAPE` (a photo
    model), (n, S, S, 3) photos, whole frames without a garment search (`photos.read_photo`;
    `invert` does not apply) and a .npy's 28x28 images made photos.
    """
    photos = tuple(input_shape) == PHOTO_SHAPE
    names, images = [], []
    for path in track(collect_inputs(paths)):
        if path.suffix.lower() == ARRAY_SUFFIX:
            array_names, array = read_array_file(path)
            names += array_names
            images.append(photos_from_dataset(array) if photos else array)
        else:
            names.append(str(path))
            images.append((read_photo(path) if photos else read_image_file(path, invert))
                          [np.newaxis])
    return names, np.concatenate(images)


def input_png(image: np.ndarray) -> bytes:
    """Return a (28, 28) image or an (S, S, 3) photo in [0, 1], as the model saw it, as PNG
    bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def write_inputs(folder: Path, names: list[str], images: np.ndarray) -> list[Path]:
    """Write each image the model saw as `folder/<input name>.28x28.png` (`.64x64.png` for a
    photo model's); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    size = "x".join(map(str, images.shape[1:3]))
    for i, (name, image) in enumerate(zip(names, images, strict=True)):
        stem = Path(name.replace("[", "_").replace("]", "")).name
        path = folder / f"{stem}.{size}.png"
        if path in paths:  # the same file name in two folders
            path = folder / f"{stem}.{i}.{size}.png"
        path.write_bytes(input_png(image))
        paths.append(path)
    return paths


def top_classes(probabilities: np.ndarray, k: int = 3) -> list[dict]:
    """Return the k most probable classes of one softmax output, best first."""
    best = np.argsort(probabilities)[::-1][:k]
    return [{"class_id": int(i), "label": CLASS_NAMES[i], "probability": float(probabilities[i])}
            for i in best]


def predictions(names: list[str], probabilities: np.ndarray, k: int = 3,
                not_sure: np.ndarray | None = None) -> list[dict]:
    """Return `[{"file": name, "top": [...]}, ...]` in input order, with `"not_sure": bool`
    in each when flags are given."""
    results = [{"file": name, "top": top_classes(p, k)}
               for name, p in zip(names, probabilities, strict=True)]
    for result, flag in zip(results, [] if not_sure is None else not_sure, strict=False):
        result["not_sure"] = bool(flag)
    return results


def format_table(results: list[dict]) -> str:
    """Return results as an aligned text table: the file, then its top classes."""
    if not results:
        return ""
    rows = [[r["file"]] + [f"{t['label']} {t['probability']:.2f}" for t in r["top"]]
            + (["(not sure)" if r["not_sure"] else ""] if "not_sure" in r else [])
            + ([f"saw {r['input']}"] if "input" in r else []) for r in results]
    k = max(len(r["top"]) for r in results)
    header = ["file"] + [f"top-{i + 1}" for i in range(k)]
    widths = [max(len(row[c]) for row in [header, *rows] if c < len(row))
              for c in range(max(map(len, rows)))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
                     for row in [header, *rows])
