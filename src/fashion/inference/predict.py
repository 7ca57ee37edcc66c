"""Classify images: load a model (or the shipped pair) once, read inputs as it takes them, and
score them in batches through a traced forward pass (or ONNX Runtime)."""

from __future__ import annotations

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
    read_image,
    to_fashion_mnist,
)
from fashion.inference.model_files import (
    check_shapes,
    load_model,
    photo_model_path,
    resolve_model_path,
)
from fashion.inference.photos import is_phone_photo, photos_from_dataset, to_photo
from fashion.storage.classes import INPUT_SHAPE, NUM_CLASSES, PHOTO_SHAPE
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

    def prepare(self, image: Image.Image, invert: str = "auto") -> np.ndarray:
        """Make a decoded image (`images.decode_image`) what the model takes: the dataset's
        28x28 (`images.to_fashion_mnist`), or a photo model's whole frame in colour
        (`photos.to_photo`; `invert` does not apply)."""
        if self.input_shape() == PHOTO_SHAPE:
            return to_photo(image)
        return to_fashion_mnist(image, invert)

    def prepare_arrays(self, images: np.ndarray) -> np.ndarray:
        """Make dataset images (n, 28, 28) in [0, 1] what the model takes."""
        return photos_from_dataset(images) if self.input_shape() == PHOTO_SHAPE else images

    def probabilities(self, images) -> np.ndarray:
        """Return softmax outputs (n, 10) of float32 images in [0, 1]: an array (n, 28, 28[, 1])
        or, for a photo model, (n, S, S, 3) photos; or a list of single images (`prepare`)."""
        images = _as_batch(images, self.input_shape())
        chunks = [self._forward(images[i:i + self.batch_size])
                  for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def answers(self, images, threshold: float | None = None):
        """Return calibrated probabilities (n, 10) and a "not sure" flag per image; `threshold`
        overrides the calibration's."""
        return self.calibrate(self.probabilities(images), images, threshold)

    def calibrate(self, probabilities: np.ndarray, images, threshold: float | None = None):
        """`answers` for probabilities already computed (the service batches requests)."""
        calibration = self.calibration
        if threshold is not None:
            calibration = Calibration(calibration.temperature, threshold)
        calibrated = calibration.apply(probabilities)
        return calibrated, calibration.not_sure(calibrated, images)


class RoutedPredictor:
    """Two models behind one predictor, each input scored by the network made for it.

    Phone photos (`photos.is_phone_photo`: a garment on a bed, a floor) go to a photo model as
    whole frames in colour, without the garment search; 28x28 images, arrays and product shots
    on a plain background go to a Fashion-MNIST model through the dataset's preprocessing. Each
    model's answers are calibrated by its own calibration. The shipped models are such a pair.
    """

    def __init__(self, dataset: Predictor, photos: Predictor):
        if photos.input_shape() != PHOTO_SHAPE or dataset.input_shape() != INPUT_SHAPE:
            raise ModelError("a routed predictor takes a 28x28 model and a photo model, in "
                             "that order")
        self.dataset, self.photos = dataset, photos

    def warm_up(self) -> RoutedPredictor:
        self.dataset.warm_up()
        self.photos.warm_up()
        return self

    def prepare(self, image: Image.Image, invert: str = "auto") -> np.ndarray:
        """A (S, S, 3) photo for the photo model, or a (28, 28) image for the other."""
        if is_phone_photo(image):
            return self.photos.prepare(image)
        return self.dataset.prepare(image, invert)

    def prepare_arrays(self, images: np.ndarray) -> np.ndarray:
        return images  # dataset images: the Fashion-MNIST model's

    def probabilities(self, images) -> np.ndarray:
        """As `Predictor.probabilities`; photos (S, S, 3) and 28x28 images may be mixed."""
        results = np.zeros((len(images), NUM_CLASSES), np.float32)
        for predictor, rows in self._routes(images):
            results[rows] = predictor.probabilities([images[i] for i in rows])
        return results

    def answers(self, images, threshold: float | None = None):
        """As `Predictor.answers`: each image judged by its model's calibration; `threshold`
        overrides both models' thresholds."""
        return self.calibrate(self.probabilities(images), images, threshold)

    def calibrate(self, probabilities: np.ndarray, images, threshold: float | None = None):
        """`answers` for probabilities already computed (the service batches requests)."""
        calibrated = np.zeros_like(probabilities, np.float32)
        not_sure = np.zeros(len(probabilities), bool)
        for predictor, rows in self._routes(images):
            calibrated[rows], not_sure[rows] = predictor.calibrate(
                probabilities[rows], [images[i] for i in rows], threshold)
        return calibrated, not_sure

    def _routes(self, images) -> list[tuple[Predictor, np.ndarray]]:
        """Each model that scores some of `images`, with their rows (photos by their shape)."""
        photo = np.array([np.shape(image)[-3:] == PHOTO_SHAPE for image in images], bool)
        routes = [(self.photos, np.flatnonzero(photo)), (self.dataset, np.flatnonzero(~photo))]
        return [(predictor, rows) for predictor, rows in routes if len(rows)]


def _as_batch(images, shape: tuple[int, int, int]) -> np.ndarray:
    """Images as one float32 array of `shape` images; a photo model's dataset images made
    photos."""
    if not isinstance(images, np.ndarray):
        images = list(images)
        if not images:
            return np.zeros((0, *shape), np.float32)
        if len({np.shape(image) for image in images}) > 1:  # a photo model's photos and 28x28s
            batch = np.empty((len(images), *shape), np.float32)
            photo = np.array([np.shape(image) == shape for image in images])
            for rows in (np.flatnonzero(photo), np.flatnonzero(~photo)):
                batch[rows] = _as_batch(np.stack([images[i] for i in rows]), shape)
            return batch
        images = np.stack(images)
    images = np.asarray(images, dtype=np.float32)
    if shape == PHOTO_SHAPE and images.shape[-3:] != PHOTO_SHAPE:
        images = photos_from_dataset(images)
    return images.reshape(-1, *shape)


def load_predictor(path: str | os.PathLike | None = None,
                   batch_size: int = BATCH_SIZE) -> Predictor | RoutedPredictor:
    """Load a `.keras` model or an exported `.onnx` model, with the calibration saved beside
    it, if any. By default the shipped model: with a shipped photo model beside it, the pair of
    them (a `RoutedPredictor`)."""
    if path is None and photo_model_path().is_file():
        return RoutedPredictor(_predictor(None, batch_size),
                               _predictor(photo_model_path(), batch_size)).warm_up()
    return _predictor(path, batch_size).warm_up()


def _predictor(path, batch_size: int) -> Predictor:
    path = resolve_model_path(path)
    return Predictor(path if path.suffix == ".onnx" else load_model(path), batch_size,
                     calibration=load_calibration(path))


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
                predictor: Predictor | RoutedPredictor | None = None,
                ) -> tuple[list[str], np.ndarray | list[np.ndarray]]:
    """Read and preprocess every input before any is scored, so a bad file stops the run early.

    `track` wraps the list of files as it is read, e.g. in a progress bar. Returns a name per
    image (`file.npy[i]` for images inside an array of several) and the images as `predictor`
    takes them (`prepare`; default: the dataset's 28x28): one float32 array, or a list when a
    `RoutedPredictor` has both photos and 28x28 images among them.
    """
    prepare = predictor.prepare if predictor else to_fashion_mnist
    prepare_arrays = predictor.prepare_arrays if predictor else (lambda images: images)
    names, images = [], []
    for path in track(collect_inputs(paths)):
        if path.suffix.lower() == ARRAY_SUFFIX:
            array_names, array = read_array_file(path)
            names += array_names
            images.extend(prepare_arrays(array))
        else:
            names.append(str(path))
            images.append(prepare(read_image(path), invert))
    if len({image.shape for image in images}) > 1:
        return names, images
    return names, np.stack(images) if images else np.zeros((0, SIZE, SIZE), np.float32)
