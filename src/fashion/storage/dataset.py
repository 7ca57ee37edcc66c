"""Load Fashion-MNIST, from a verified local copy or Keras's download, and split it."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fashion.errors import DataError
from fashion.storage.classes import NUM_CLASSES

DATA_DIR_VARIABLE = "FASHION_MNIST_DIR"

# Published by Zalando; the same figures are in shared/data/fashion-mnist/README.md.
SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
# Where Keras's own loader downloads them from, and into which folder of its cache.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_CACHE_SUBDIR = "datasets/fashion-mnist"
IMAGE_FILES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
LABEL_FILES = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# IDX header of each file: magic number then dimensions.
IDX_HEADERS = {
    "train-images-idx3-ubyte.gz": (2051, 60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (2049, 60000),
    "t10k-images-idx3-ubyte.gz": (2051, 10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (2049, 10000),
}
# The notebook's split of the 10,000 test images: 6,000 validation, 4,000 test.
SEED_SPLIT_TEST_SIZE = 0.4
SEED_SPLIT_RANDOM_STATE = 42
# `standard` carves as many validation images from the training set as the seed split has.
STANDARD_VAL_SIZE = 6000


@dataclass(frozen=True)
class Splits:
    """Images as float32 (N, 28, 28, 1) in [0, 1] and integer labels, per split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # SHA-256 of each source file, recorded in config.json beside the run.
    data_sha256: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """Return the local copy named by the argument or by FASHION_MNIST_DIR, if any."""
    chosen = data_dir or os.environ.get(DATA_DIR_VARIABLE)
    return Path(chosen).expanduser() if chosen else None


def check_local_copy(data_dir: Path) -> dict[str, str]:
    """Check the four files' SHA-256 (and, for a file that fails it, why); return the checksums.

    Raises:
        DataError: naming the first missing, truncated, malformed or altered file.
    """
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist; point --data-dir or "
                        f"{DATA_DIR_VARIABLE} at a folder holding the four Fashion-MNIST .gz files")
    checksums = {}
    for name, expected_sha in SHA256.items():
        path = data_dir / name
        if not path.is_file():
            raise DataError(f"{path} is missing; put the original {name} in {data_dir}")
        # The checksum is of the compressed bytes, so the original file is known before any of
        # it is decompressed; only a file that fails it is opened, to say what is wrong.
        actual_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual_sha != expected_sha:
            _check_idx(path, IDX_HEADERS[name])
            raise DataError(f"{path} has SHA-256 {actual_sha}, expected {expected_sha}; "
                            f"replace it with the original {name}")
        checksums[name] = actual_sha
    return checksums


def _check_idx(path: Path, header: tuple[int, ...]) -> None:
    """Refuse a file that is not gzip, is damaged, or holds other IDX data than `header`."""
    n_header = 4 * len(header)
    n_expected = n_header + int(np.prod(header[1:]))
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(n_expected + 1)  # one byte more tells a longer file; a gzip bomb stops
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: damaged deflate data
        raise DataError(f"{path} is truncated, damaged or not a gzip file ({e}); "
                        f"replace it with the original {path.name}") from e
    found = struct.unpack(f">{len(header)}I", raw[:n_header]) if len(raw) >= n_header else ()
    if found[:1] != header[:1]:
        raise DataError(f"{path} has IDX magic {found[:1] or 'none'}, expected {header[0]}; "
                        f"it is not the original {path.name}")
    if found != header or len(raw) != n_expected:
        raise DataError(f"{path} has IDX shape {found[1:]} and {len(raw) - n_header} data bytes, "
                        f"expected shape {header[1:]}; replace it with the original {path.name}")



def load_fashion_mnist(data_dir: str | os.PathLike | None = None):
    """Load the raw uint8 arrays, verified.

    Args:
        data_dir: a folder with the four original .gz files; defaults to FASHION_MNIST_DIR, then
            to Keras's usual download into its cache (`keras.utils.get_file`, as
            `keras.datasets.fashion_mnist.load_data` does, with each file's checksum).

    Returns:
        `((x_train, y_train), (x_test, y_test))` and a dict of file name -> SHA-256.
    """
    local = resolve_data_dir(data_dir)
    if local is None:
        local = _download()
    checksums = check_local_copy(local)
    images, labels = ({name: _read_idx(local / name, IDX_HEADERS[name]) for name in names}
                      for names in (IMAGE_FILES, LABEL_FILES))
    return tuple((images[x], labels[y]) for x, y in zip(IMAGE_FILES, LABEL_FILES,
                                                         strict=True)), checksums


def _download() -> Path:
    """Fetch the four files into Keras's cache, as Keras's own loader does; return the folder."""
    import keras

    try:
        paths = [keras.utils.get_file(name, origin=KERAS_ORIGIN + name, file_hash=sha,
                                      cache_subdir=KERAS_CACHE_SUBDIR)
                 for name, sha in SHA256.items()]
    except Exception as e:  # Keras wraps network failures in several exception types.
        raise DataError(f"could not download Fashion-MNIST ({type(e).__name__}: {e}); without a "
                        f"network, pass --data-dir DIR or set {DATA_DIR_VARIABLE} to a folder "
                        "holding the four original .gz files") from e
    return Path(paths[0]).parent


def _read_idx(path: Path, header: tuple[int, ...]) -> np.ndarray:
    """The array an IDX file holds, once its checksum has proved it the original."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=4 * len(header)).reshape(header[1:])


def scale_images(images: np.ndarray) -> np.ndarray:
    """Return uint8 (N, 28, 28) images as float32 (N, 28, 28, 1) in [0, 1], copied once."""
    scaled = images.astype(np.float32)
    scaled /= 255.0  # in place: one float32 copy of 60,000 images (188 MB) instead of two
    return scaled[..., np.newaxis]


def one_hot(labels: np.ndarray) -> np.ndarray:
    """Return float32 one-hot targets for categorical cross-entropy."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def split_data(arrays, split: str = "seed", seed: int = 42, limit: int | None = None) -> Splits:
    """Split raw arrays into train / validation / test and scale the pixels.

    Args:
        arrays: `((x_train, y_train), (x_test, y_test))` as from Keras.
        split: "seed" carves validation 6,000 / test 4,000 from the test images exactly as the
            notebook did; "standard" carves validation from the training images (seeded) and
            keeps the full 10,000 as test, as published results do.
        seed: random state of the standard split and of `limit`'s sampling.
        limit: cap every split at this many images (stratified), for smoke tests.
    """
    (x_train, y_train), (x_test, y_test) = arrays
    if split == "seed":
        x_val, x_test, y_val, y_test = train_test_split(
            x_test, y_test, test_size=SEED_SPLIT_TEST_SIZE,
            random_state=SEED_SPLIT_RANDOM_STATE, stratify=y_test)
    elif split == "standard":
        x_train, x_val, y_train, y_val = train_test_split(
            x_train, y_train, test_size=STANDARD_VAL_SIZE, random_state=seed, stratify=y_train)
    else:
        raise ValueError(f"unknown split {split!r}")
    parts = [(x_train, y_train), (x_val, y_val), (x_test, y_test)]
    if limit is not None:
        parts = [_stratified_sample(x, y, limit, seed) for x, y in parts]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts
    return Splits(split, scale_images(x_train), y_train.astype(np.int64),
                  scale_images(x_val), y_val.astype(np.int64),
                  scale_images(x_test), y_test.astype(np.int64))


def load_splits(config, data_dir: str | os.PathLike | None = None) -> Splits:
    """Load the data and split it as `config` says (split, seed, limit): the same images every
    time, for the run, its report and any later evaluation.

    `data_dir` overrides the config's own (a run moved to another machine).
    """
    arrays, checksums = load_fashion_mnist(data_dir or config.data_dir)
    splits = split_data(arrays, config.split, seed=config.seed, limit=config.limit)
    return dataclasses.replace(splits, data_sha256=checksums)


def sample_train(splits: Splits, n: int | None, seed: int) -> Splits:
    """Return the splits with at most `n` training images (stratified), e.g. for a cheap search."""
    if n is None or n >= len(splits.y_train):
        return splits
    x_train, y_train = _stratified_sample(splits.x_train, splits.y_train, n, seed)
    return dataclasses.replace(splits, x_train=x_train, y_train=y_train)


def _stratified_sample(x: np.ndarray, y: np.ndarray, n: int, seed: int):
    if n >= len(y):
        return x, y
    x_kept, _, y_kept, _ = train_test_split(x, y, train_size=n, random_state=seed, stratify=y)
    return x_kept, y_kept


def class_counts(labels: np.ndarray) -> list[int]:
    """Return the number of images of each class, in class order."""
    return np.bincount(labels, minlength=NUM_CLASSES).tolist()
