"""Shared fixtures: the real data when present, a private Keras cache, a fixed seed."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Keras reads KERAS_HOME once, at import: give the tests their own cache before anything
# imports Keras, so they never touch the user's ~/.keras.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="fashion-tests-keras-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run the slow full-data checks")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --run-slow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of the four original files: $FASHION_MNIST_DIR or ../shared/data."""
    path = Path(os.environ.get("FASHION_MNIST_DIR", SHARED_DATA))
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST files not found in {path}; set FASHION_MNIST_DIR")
    return path


@pytest.fixture(scope="session")
def raw_arrays(data_dir):
    from fashion.storage.dataset import load_fashion_mnist

    arrays, _ = load_fashion_mnist(data_dir)
    return arrays


@pytest.fixture(autouse=True)
def fixed_seed():
    import keras

    keras.utils.set_random_seed(1234)


def synthetic_garments(n: int, seed: int = 0):
    """n uint8 (28, 28) silhouettes and their labels, no dataset needed: a light shape on black
    whose orientation (tall for classes 0-4, wide for 5-9) and aspect ratio (0.3 to 0.9) name its
    class, with random size, brightness, position and noise. Trimming and refitting a photo of
    one keeps its class, as with a real garment."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    rows, cols = np.mgrid[0:28, 0:28]
    for i, label in enumerate(labels):
        long_side = rng.uniform(25, 28)  # fills the frame, as the dataset's garments do
        short_side = long_side * (0.3 + 0.15 * (label % 5))
        height, width = (long_side, short_side) if label < 5 else (short_side, long_side)
        top, left = (28 - height) / 2 + rng.uniform(-1, 1), (28 - width) / 2 + rng.uniform(-1, 1)
        inside = ((rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width))
        shade = rng.uniform(150, 255) - rng.uniform(0, 40, (28, 28))
        images[i] = np.where(inside, shade, 0).clip(0, 255).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small CNN trained in seconds on synthetic garments (see `synthetic_garments`): enough to
    check that predict, export and serve agree with it, with neither the dataset nor a shipped
    model present."""
    import keras

    images, labels = synthetic_garments(3000, seed=1)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[..., None] / np.float32(255), labels, epochs=4, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def test_images():
    """200 synthetic garments as uint8 (200, 28, 28), and their labels."""
    return synthetic_garments(200, seed=2)


def photo_like(image, rng, size=(200, 250)):
    """A 28x28 dataset image made to look like a product photo: upscaled, RGB, dark on white,
    placed off-centre on a larger canvas."""
    from PIL import Image

    side = int(rng.integers(120, 180))
    garment = Image.fromarray(255 - image).resize((side, side), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", size, "white")
    canvas.paste(garment.convert("RGB"), (int(rng.integers(0, size[0] - side)),
                                          int(rng.integers(0, size[1] - side))))
    return canvas


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory):
    """A finished run directory: 200 images a split, 3 one-epoch trials, 2 epochs of training.

    The cnn space, as the default preset's `vgg_quick` searches nothing and the report's
    tuning figures need trials that differ.
    """
    out = tmp_path_factory.mktemp("report") / "run"
    done = subprocess.run(
        [sys.executable, "-m", "fashion.cli", "run", "--data-dir", str(data_dir), "--out",
         str(out), "--limit", "200", "--space", "cnn", "--tuner", "random", "--max-trials", "3",
         "--max-epochs", "1", "--final-epochs", "2"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_MAX_STEPS_PER_EPOCH": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


FIXTURE_PHOTOS = REPO / "tests" / "fixtures" / "photos"


def labelled_photos(root: Path, per_class: int = 4, names: dict | None = None,
                    seed: int = 0) -> Path:
    """A folder of labelled photos in `fashion adapt`'s layout, made from the five fixture photos
    (classes 0, 1, 3, 4, 6): `per_class` variants of each, mirrored, cropped and lit anew, saved
    as small JPEGs in a sub-folder named `names[class id]` (default: the id)."""
    from PIL import Image, ImageEnhance, ImageOps

    rng = np.random.default_rng(seed)
    for source in sorted(FIXTURE_PHOTOS.glob("*/*.jpg")):
        label = int(source.parent.name)
        folder = root / (names or {}).get(label, str(label))
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as photo:
            photo = photo.convert("RGB")
        for i in range(per_class):
            image = ImageOps.mirror(photo) if i % 2 else photo
            width, height = image.size
            left, top, right, bottom = rng.uniform(0, 0.15, 4)
            image = image.crop((int(left * width), int(top * height),
                                int(width * (1 - right)), int(height * (1 - bottom))))
            image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
            image.resize((96, 96)).save(folder / f"photo{i}.jpg", quality=85)
    return root
