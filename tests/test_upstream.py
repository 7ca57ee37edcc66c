"""The one module that reaches into other libraries: its version guard, and proof that nothing it
does leaks out to tuners, plots or files that fashion did not create."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

from fashion.errors import DependencyError
from fashion.inference.model_files import default_model_path
from fashion.storage import files
from fashion.storage.dataset import Splits
from fashion.training.config import config_from_preset
from fashion.tuning import project, upstream
from fashion.tuning.tune import build_tuner, run_search

SRC = Path(__file__).resolve().parents[1] / "src"


def test_an_untested_keras_tuner_is_refused_naming_both_versions():
    versions = {"keras-tuner": "1.5.0", "keras": "3.13.2"}
    with pytest.raises(DependencyError, match=r"keras-tuner>=1\.4\.7,<1\.5, found 1\.5\.0"):
        upstream.check_versions(versions.get)
    upstream.check_versions({"keras-tuner": "1.4.8", "keras": "3.15.1.dev0"}.get)


def _tiny_splits(n=40):
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.arange(n) % 10
    return Splits("seed", x, y, x, y, x, y)


def _users_model(hp):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(hp.Int("units", 4, 8), activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.integration
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="ram:// is TensorFlow's")
def test_a_users_tuner_after_a_fashion_search_writes_as_without_fashion(tmp_path, monkeypatch):
    import tensorflow as tf

    keras.config.set_max_steps_per_epoch(2)
    try:
        config = config_from_preset(space="mlp", tuner="random", max_trials=1, max_epochs=1,
                                    time_budget=None, search_images=None)
        splits = _tiny_splits()
        run_search(build_tuner(config, tmp_path / "run"), splits, config, tmp_path / "run",
                   verbose=0)
        assert (tmp_path / "run" / project.TUNING / upstream.ORACLE_FILE).is_file()

        # KerasTuner writes a remote project through tf.io.gfile; TensorFlow's in-memory
        # filesystem stands in for a bucket. Nothing may land in a local "ram:" folder.
        monkeypatch.chdir(tmp_path)
        tuner = keras_tuner.RandomSearch(_users_model, objective="val_loss", max_trials=1,
                                         directory="ram://users", project_name="p")
        tuner.search(splits.x_train, splits.y_train, epochs=1, verbose=0,
                     validation_data=(splits.x_val, splits.y_val))
    finally:
        keras.config.set_max_steps_per_epoch(None)
    assert tf.io.gfile.exists("ram://users/p/oracle.json")
    assert tf.io.gfile.glob("ram://users/p/trial_*/trial.json")
    assert not (tmp_path / "ram:").exists()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="ram:// is TensorFlow's")
def test_fashions_writer_keeps_remote_paths_remote(tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    upstream.save_json("ram://bucket/project/oracle.json", {"a": 1})
    with tf.io.gfile.GFile("ram://bucket/project/oracle.json") as f:
        assert json.load(f) == {"a": 1}
    assert not (tmp_path / "ram:").exists()


def test_atomic_writes_leave_the_umask_alone_and_apply_it(tmp_path):
    before = os.umask(0o027)
    try:
        files.write_atomic(tmp_path / "f.json", "{}")
        assert os.umask(0o027) == 0o027  # nobody changed it meanwhile
    finally:
        os.umask(before)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left


@pytest.mark.integration
def test_import_fashion_is_light_and_makes_its_models_loadable_by_keras():
    if not default_model_path().is_file():
        pytest.skip("no shipped model in this checkout")
    script = (
        "import sys, fashion\n"
        "light = not {'keras', 'tensorflow', 'matplotlib'} & set(sys.modules)\n"
        "import keras\n"
        f"model = keras.saving.load_model({str(default_model_path())!r}, compile=False)\n"
        "print(light, model.output_shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "(None,", "10)"]


def test_drawing_the_report_leaves_matplotlibs_backend_and_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.rcParams["backend"]
    from fashion.evaluation.figures import plot_training_curves

    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.8],
               "val_accuracy": [0.4, 0.7]}
    plot_training_curves(history, None, tmp_path / "curves.png")
    assert matplotlib.rcParams["backend"] == backend
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()  # no figure left open
