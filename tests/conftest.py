"""Shared fixtures: the real data when present, a private Keras cache, a fixed seed, a tiny
model and a tiny finished run made once a session, and `fashion` processes watched through
their output."""

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
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


# Whose integration tests take longest (20-50 s each, a chain of `fashion` processes or a
# search): scheduled before the others' few seconds.
LONGEST_INTEGRATION_TESTS = ("test_pipeline.py", "test_docs.py", "test_tune.py", "test_adapt.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        # It reads a run that a `fashion` process made: a run, or an adapted photo model.
        if {"tiny_run", "adapted"} & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)
    # With `pytest -n 2 --dist worksteal` the first worker takes the first half and the other
    # takes the rest, then steals from the end of the busier one's queue. So: the tests of the
    # shared tiny run first (one worker makes it at once, and keeps its readers), then the other
    # long ones, and the quick ones last, to fill the gaps instead of a long test ending late.
    items.sort(key=lambda item: (0 if "tiny_run" in item.fixturenames else
                                 1 if "integration" in item.keywords else 2,
                                 item.path.name not in LONGEST_INTEGRATION_TESTS))
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


def _session_folder(tmp_path_factory) -> Path:
    """A folder of this test session's, the same for every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _only_one_process(lock: Path):
    """Hold an exclusive lock on `lock`: one xdist worker makes what the others then read."""
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, or its process dies
        yield


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A small CNN trained in seconds on synthetic garments (see `synthetic_garments`): enough to
    check that predict, export and serve agree with it, with neither the dataset nor a shipped
    model present. Made once a session, whatever the xdist workers."""
    path = _session_folder(tmp_path_factory) / "tiny.keras"
    with _only_one_process(path.with_suffix(".lock")):
        if not path.is_file():
            _train_tiny_model().save(path.with_name("partial-tiny.keras"))
            os.replace(path.with_name("partial-tiny.keras"), path)
    return path


def _train_tiny_model():
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
    return model


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


# The tiny finished run every reading test shares, and the kill tests' uninterrupted reference
# (test_pipeline). The vgg space, whose batches, schedule and dropout resume exactly, from the cnn
# preset, which has no time budget (a deadline makes the schedule depend on the clock). Three
# trials, so the report's tuning figures have trials that differ; three final epochs, so a kill
# after the first leaves a training to continue. 200 images are two batches of the space's 128:
# no KERAS_MAX_STEPS_PER_EPOCH, whose cap makes Keras create each epoch's iterator at the end
# of the one before, so tf.data's prefetch may draw its first batch before the callback has
# told the batches their new epoch (a resumed run then differs in its second epoch).
TINY_RUN = ["--preset", "cnn", "--space", "vgg", "--limit", "200", "--tuner", "random",
            "--max-trials", "3", "--max-epochs", "1", "--final-epochs", "3"]


def fashion(*args, env=None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run `python -m fashion.cli ARGS` to the end, as a user would; return what it printed."""
    return subprocess.run([sys.executable, "-m", "fashion.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory) -> Path:
    """A finished run directory (`TINY_RUN`), made once a session whatever the xdist workers.

    Read it, never change it: a test that damages a run copies it first.
    """
    folder = _session_folder(tmp_path_factory)
    out, done = folder / "tiny-run", folder / "tiny-run.stdout"
    with _only_one_process(folder / "tiny-run.lock"):
        if not done.is_file():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed to make it
            made = fashion("run", "--data-dir", str(data_dir), "--out", str(out), *TINY_RUN)
            assert made.returncode == 0, made.stderr[-2000:]
            (folder / "tiny-run.stderr").write_text(made.stderr)
            done.write_text(made.stdout)
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


@pytest.fixture(scope="session")
def tiny_run_output(tiny_run) -> tuple[str, str]:
    """What the `fashion run` that made `tiny_run` printed: stdout and stderr."""
    return ((tiny_run.parent / "tiny-run.stdout").read_text(),
            (tiny_run.parent / "tiny-run.stderr").read_text())


class Watched:
    """A `fashion` process whose output is copied to `log` as it comes, so a test can wait for
    a line instead of polling: `wait_for(pattern)` returns once a line matches, or fails at its
    deadline or when the process ends without printing it."""

    def __init__(self, args, log: Path, env=None):
        self.log, self._lines, self._changed = log, [], threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fashion.cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with self.process.stdout as output, open(self.log, "w") as log:
            for line in output:
                log.write(line)
                log.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._lines.append(None)  # the end of the output
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 300, ready=None) -> str:
        """Wait for a line matching the regex `pattern` (and `ready()`, checked at each line);
        return it."""
        seen, deadline = 0, time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    assert line is not None, (f"ended before printing {pattern!r}:\n"
                                              + "".join(self._lines[-20:-1]))
                    if re.search(pattern, line) and (ready is None or ready()):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                assert left > 0 and self._changed.wait(left), \
                    f"{pattern!r} not printed in {timeout} s"

    def output(self) -> str:
        self._reader.join()
        return "".join(line for line in self._lines if line is not None)

    def kill(self) -> None:
        """SIGKILL the process (if it still runs) and collect it."""
        self.process.kill()
        self.process.wait()
        self._reader.join()

    def terminate(self) -> None:
        """Ask the process to stop, as Ctrl+C would, and collect it."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self._reader.join()


@pytest.fixture
def watched():
    """`watched(args, log, env)` starts a `Watched` process; any still running when the test
    ends, passed or failed, is killed."""
    started = []

    def start(args, log: Path, env=None) -> Watched:
        started.append(Watched(args, log, env))
        return started[-1]

    yield start
    for run in started:
        run.kill()
