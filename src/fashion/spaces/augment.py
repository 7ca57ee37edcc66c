"""Batches on the host: shuffled, resumable, and flipped, shifted and partly erased in NumPy."""

from __future__ import annotations

import keras
import numpy as np


class ShuffledBatches(keras.utils.PyDataset):
    """Batches in an order shuffled afresh each epoch, each a pure function of (seed, epoch,
    index) whatever order Keras fetches them in, so a training resumed at epoch k sees what an
    uninterrupted one saw: fit with `shuffle=False` (the order is shuffled here) and the
    `follow_epochs` callback. Keras's own shuffle cannot be resumed mid-way.
    """

    def __init__(self, x, y, batch_size, seed=0):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seed, self.epoch = seed, 0
        self._order_of = (None, None)  # (epoch, its permutation)

    def follow_epochs(self) -> keras.callbacks.Callback:
        """A callback that tells these batches which epoch Keras is training."""
        return keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: setattr(self, "epoch", epoch))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def order(self) -> np.ndarray:
        if self._order_of[0] != self.epoch:
            self._order_of = (self.epoch, np.random.default_rng([self.seed, self.epoch])
                              .permutation(len(self.x)))
        return self._order_of[1]

    def rows(self, index) -> np.ndarray:
        return self.order()[index * self.batch_size:(index + 1) * self.batch_size]

    def __getitem__(self, index):
        rows = self.rows(index)
        return self.x[rows], self.y[rows]


class AugmentedBatches(ShuffledBatches):
    """Shuffled batches with random horizontal flips and shifts of up to 2 pixels.

    Done in NumPy on whole batches so it works on every Keras backend and costs far less than
    a CPU's training step (a GPU's is another matter: see `VGGHyperModel.augment_in_graph`).
    """

    def __init__(self, x, y, batch_size, seed=0, max_shift=2, erase_probability=0.0):
        super().__init__(x, y, batch_size, seed=seed)
        self.max_shift, self.erase_probability = max_shift, erase_probability

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index + 1])
        rows = self.rows(index)
        images = self.x[rows]
        flip = rng.random(len(rows)) < 0.5
        images[flip] = images[flip, :, ::-1]
        # Shift each image independently: crop a random 28x28 window of the zero-padded batch.
        m = self.max_shift
        padded = np.pad(images, ((0, 0), (m, m), (m, m), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, images.shape[1:3], axis=(1, 2))
        dy, dx = rng.integers(0, 2 * m + 1, size=(2, len(rows)))
        shifted = windows[np.arange(len(rows)), dy, dx]  # (n, channels, 28, 28)
        images = np.moveaxis(shifted, 1, -1)
        if self.erase_probability:
            images = erase_random_rectangles(images, self.erase_probability, rng)
        return images, self.y[rows]


def erase_random_rectangles(images, probability, rng, min_side=4, max_side=12):
    """Zero one random rectangle in each image with the given probability (random erasing).

    Zhong et al., 2017: hiding part of a garment makes the network use all of it. Keras's
    `RandomErasing` layer does this inside the model; here it joins the NumPy flips and shifts
    of `AugmentedBatches`, which work the same on every backend.
    """
    n, height, width = images.shape[:3]
    sides = rng.integers(min_side, max_side + 1, size=(2, n))
    top = rng.integers(0, height - sides[0] + 1)
    left = rng.integers(0, width - sides[1] + 1)
    rows, cols = np.arange(height), np.arange(width)
    inside_rows = (rows >= top[:, None]) & (rows < (top + sides[0])[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + sides[1])[:, None])
    erased = inside_rows[:, :, None] & inside_cols[:, None, :]
    erased &= (rng.random(n) < probability)[:, None, None]
    return np.where(erased[..., None], 0.0, images).astype(images.dtype)
