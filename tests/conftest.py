"""Shared fixtures: the real data when present, a private Keras cache, a fixed seed."""

import os
import tempfile
from pathlib import Path

# Keras reads KERAS_HOME once, at import: give the tests their own cache before anything
# imports Keras, so they never touch the user's ~/.keras.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="fashion-tests-keras-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
    from fashion.data import load_fashion_mnist

    arrays, _ = load_fashion_mnist(data_dir)
    return arrays


@pytest.fixture(autouse=True)
def fixed_seed():
    import keras

    keras.utils.set_random_seed(1234)
