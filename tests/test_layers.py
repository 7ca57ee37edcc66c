import keras
import numpy as np
import pytest

from fashion.errors import ModelError
from fashion.inference.model_files import load_model, save_model
from fashion.spaces.layers import HorizontalFlip, average_of, with_flip_averaging


def test_horizontal_flip_mirrors_left_to_right():
    images = np.arange(2 * 28 * 28, dtype="float32").reshape(2, 28, 28, 1)
    np.testing.assert_array_equal(HorizontalFlip()(images), images[:, :, ::-1])


def _small_cnn():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


def test_flip_averaging_predicts_the_mean_of_image_and_mirror():
    model = _small_cnn()
    images = np.random.default_rng(0).random((5, 28, 28, 1), dtype="float32")
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(with_flip_averaging(model).predict(images, verbose=0), expected,
                               atol=1e-6)


def test_a_flip_averaged_model_survives_a_safe_save_and_load(tmp_path):
    model = with_flip_averaging(_small_cnn())
    images = np.random.default_rng(1).random((3, 28, 28, 1), dtype="float32")
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)


def test_an_average_of_models_predicts_their_mean_and_survives_a_safe_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    members = [_small_cnn(), _small_cnn()]
    images = np.random.default_rng(2).random((4, 28, 28, 1), dtype="float32")
    expected = np.mean([m.predict(images, verbose=0) for m in members], axis=0)
    assert np.abs(members[0].predict(images, verbose=0) - expected).max() > 1e-3  # they differ
    averaged = average_of(members, "pair")
    save_model(averaged, tmp_path / "pair.keras")
    loaded = load_model(tmp_path / "pair.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)
    assert loaded.count_params() == sum(m.count_params() for m in members)


def test_an_average_of_nothing_or_of_models_of_other_inputs_is_refused():
    photo_model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                    keras.layers.Dense(10, activation="softmax")])
    for models in ([], [_small_cnn(), photo_model]):
        with pytest.raises(ModelError, match="all taking images of one shape"):
            average_of(models)
