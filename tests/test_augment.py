"""`fashion.spaces.augment`: batches shuffled as a pure function of (seed, epoch, index), and
flipped, shifted and erased in NumPy without changing their labels or range."""

import keras
import numpy as np
import pytest

from fashion.spaces.augment import AugmentedBatches, ShuffledBatches, erase_random_rectangles


def test_augmented_batches_flip_and_shift_but_keep_labels():
    x = np.zeros((10, 28, 28, 1), dtype="float32")
    x[:, 10:18, 2:6] = 1.0  # a bar near the left edge
    y = np.arange(10)
    batches = AugmentedBatches(x, y, batch_size=10, seed=3)
    images, labels = batches[0]
    assert images.shape == x.shape and len(batches) == 1
    np.testing.assert_array_equal(np.sort(labels), y)
    assert images.sum() == pytest.approx(x.sum())  # shifted within the padding, nothing lost
    assert (images != x).any()


def test_random_erasing_zeroes_one_rectangle_per_chosen_image():
    images = np.ones((200, 28, 28, 1), dtype="float32")
    erased = erase_random_rectangles(images, 0.5, np.random.default_rng(0))
    zeros = (erased == 0).sum(axis=(1, 2, 3))
    assert erased.dtype == images.dtype and images.min() == 1.0  # the input is left alone
    assert 60 < (zeros > 0).sum() < 140
    assert zeros[zeros > 0].min() >= 16 and zeros.max() <= 144  # 4x4 to 12x12
    for image in erased[zeros > 0]:
        rows, cols = np.nonzero(image[..., 0] == 0)
        assert len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one solid rectangle


def test_shuffled_batches_are_a_function_of_seed_epoch_and_index():
    x = np.arange(100, dtype="float32").reshape(100, 1, 1, 1)
    batches = ShuffledBatches(x, np.arange(100), batch_size=32, seed=3)
    first = [batches[i][1] for i in range(len(batches))]
    assert sorted(np.concatenate(first)) == list(range(100))  # each image once an epoch
    batches.epoch = 1
    assert not np.array_equal(batches[0][1], first[0])  # reshuffled each epoch
    again = ShuffledBatches(x, np.arange(100), batch_size=32, seed=3)
    again.epoch = 1
    np.testing.assert_array_equal(again[2][1], batches[2][1])


def test_the_order_does_not_depend_on_which_batch_keras_fetches_first():
    x = np.arange(100, dtype="float32").reshape(100, 1, 1, 1)
    forwards = ShuffledBatches(x, np.arange(100), batch_size=32, seed=5)
    backwards = ShuffledBatches(x, np.arange(100), batch_size=32, seed=5)
    for batches in (forwards, backwards):
        batches.epoch = 2
    ahead = [backwards[i][1] for i in reversed(range(len(backwards)))][::-1]
    for i in range(len(forwards)):
        np.testing.assert_array_equal(forwards[i][1], ahead[i])
    assert [len(forwards[i][1]) for i in range(len(forwards))] == [32, 32, 32, 4]
    other_seed = ShuffledBatches(x, np.arange(100), batch_size=32, seed=6)
    other_seed.epoch = 2
    assert not np.array_equal(other_seed[0][1], forwards[0][1])


def test_follow_epochs_tells_the_batches_which_epoch_keras_trains():
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    batches = ShuffledBatches(x, keras.utils.to_categorical(np.arange(16) % 10, 10), 8)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    model.fit(batches, epochs=3, shuffle=False, verbose=0, callbacks=[batches.follow_epochs()])
    assert batches.epoch == 2


@pytest.mark.parametrize("erase_probability", [0.0, 0.5])
def test_augmented_batches_keep_shape_dtype_range_and_repeat_for_the_same_draw(
        erase_probability):
    rng = np.random.default_rng(1)
    x = rng.random((50, 28, 28, 1), dtype=np.float32)
    original, y = x.copy(), np.arange(50) % 10
    batches = AugmentedBatches(x, y, batch_size=16, seed=4, erase_probability=erase_probability)
    again = AugmentedBatches(x, y, batch_size=16, seed=4, erase_probability=erase_probability)
    for index in range(len(batches)):
        images, labels = batches[index]
        assert images.shape == (len(labels), 28, 28, 1) and images.dtype == np.float32
        assert images.min() >= 0.0 and images.max() <= 1.0
        np.testing.assert_array_equal(labels, y[batches.rows(index)])
        np.testing.assert_array_equal(images, again[index][0])  # (seed, epoch, index) decide
    np.testing.assert_array_equal(x, original)  # the input itself is left alone
    batches.epoch = 1
    assert not np.array_equal(batches[0][0], again[0][0])  # a new draw each epoch


def test_augmented_batches_shift_by_at_most_max_shift():
    x = np.zeros((40, 28, 28, 1), dtype="float32")
    x[:, 13:15, 13:15] = 1.0  # a dot in the middle
    images, _ = AugmentedBatches(x, np.arange(40), batch_size=40, seed=0, max_shift=2)[0]
    rows, cols = np.nonzero(images[..., 0].max(axis=0))
    assert rows.min() >= 11 and rows.max() <= 16 and cols.min() >= 11 and cols.max() <= 16
    assert (images.reshape(40, -1).sum(axis=1) == 4).all()  # moved within the padding, whole
