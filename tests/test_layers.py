import keras
import numpy as np
import pytest

from fashion.errors import ModelError
from fashion.inference.model_files import load_model, save_model
from fashion.spaces.layers import (
    FusedBatchNormalization,
    HorizontalFlip,
    average_of,
    with_flip_averaging,
)


def test_horizontal_flip_mirrors_left_to_right():
    images = np.arange(2 * 28 * 28, dtype="float32").reshape(2, 28, 28, 1)
    np.testing.assert_array_equal(HorizontalFlip()(images), images[:, :, ::-1])


def _as_numpy(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_batch_norm_normalises_and_tracks_statistics_as_keras_batch_norm_does(policy):
    activations = np.random.default_rng(0).normal(2.0, 3.0, (16, 7, 7, 5)).astype("float32")
    keras_norm = keras.layers.BatchNormalization(momentum=0.9, dtype=policy)
    fused_norm = FusedBatchNormalization(momentum=0.9, dtype=policy)
    for training in (True, True, False):  # two steps move the statistics, then inference
        expected = _as_numpy(keras_norm(activations, training=training))
        got = fused_norm(activations, training=training)
        assert got.dtype == keras_norm.compute_dtype
        # Within bfloat16's rounding (8 bits: 1/128 relative) and the variance's n/(n-1).
        np.testing.assert_allclose(_as_numpy(got), expected, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(fused_norm.moving_mean.numpy(), keras_norm.moving_mean.numpy(),
                               rtol=1e-5)
    # The fused kernel's running variance is the unbiased one: n/(n-1) of Keras's new share.
    np.testing.assert_allclose(fused_norm.moving_variance.numpy(),
                               keras_norm.moving_variance.numpy(), rtol=2e-3)
    assert abs(float(np.mean(fused_norm.moving_mean.numpy())) - 2.0 * 0.19) < 0.1  # 1-0.9^2


def test_fused_batch_norm_falls_back_to_keras_where_the_kernel_does_not_apply():
    features = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")  # rank 2
    keras_norm, fused_norm = keras.layers.BatchNormalization(), FusedBatchNormalization()
    np.testing.assert_allclose(_as_numpy(fused_norm(features, training=True)),
                               _as_numpy(keras_norm(features, training=True)), atol=1e-6)
    np.testing.assert_allclose(fused_norm.moving_variance.numpy(),
                               keras_norm.moving_variance.numpy(), atol=1e-7)


def test_a_model_with_fused_batch_norm_trains_and_survives_a_safe_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3),
                              FusedBatchNormalization(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    rng = np.random.default_rng(3)
    images = rng.random((32, 28, 28, 1), dtype="float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 32), 10)
    losses = model.fit(images, labels, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[1], FusedBatchNormalization)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)


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
