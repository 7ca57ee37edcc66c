"""The cnn space: a small CPU-sized CNN searched in its blocks, optimiser, batch size and
augmentation."""

from __future__ import annotations

import keras

from fashion.spaces.augment import AugmentedBatches, ShuffledBatches
from fashion.spaces.base import SearchSpace
from fashion.spaces.layers import FusedBatchNormalization
from fashion.storage.classes import INPUT_SHAPE, NUM_CLASSES

CNN_MIN_BLOCKS, CNN_MAX_BLOCKS = 2, 3


class CNNHyperModel(SearchSpace):
    """Conv blocks with optional batch norm and dropout; batch size and augmentation in `fit`.

    Sized for a CPU: one convolution per block and at most 64 filters keep an epoch of 60,000
    images near the 10 s a conv 32-64 network takes on 2 cores.
    """

    name = "cnn"
    family = "cnn"

    def build(self, hp):
        # At least two blocks: one block leaves a 14x14x64 map whose dense layer (3.2M weights)
        # learned fastest in 3-epoch trials, won the search, then overfitted (0.894 test).
        blocks = hp.Int("conv_blocks", CNN_MIN_BLOCKS, CNN_MAX_BLOCKS, default=CNN_MIN_BLOCKS)
        kernel_size = hp.Choice("kernel_size", [3, 5], default=3)
        batch_norm = hp.Boolean("batch_norm", default=True)
        x = inputs = keras.Input(INPUT_SHAPE)
        for i in range(CNN_MAX_BLOCKS):
            # Declared for every block, used or not, so that KerasTuner knows the whole space
            # before the first trial (a resumed search is checked against it).
            using_block = list(range(max(i + 1, CNN_MIN_BLOCKS), CNN_MAX_BLOCKS + 1))
            with hp.conditional_scope("conv_blocks", using_block):
                filters = hp.Choice(f"filters_{i}", [16, 32, 64], default=min(32 * 2**i, 64))
            if i >= blocks:
                continue
            # Batch norm's shift makes the convolution's bias redundant.
            x = keras.layers.Conv2D(filters, kernel_size, padding="same",
                                    use_bias=not batch_norm)(x)
            if batch_norm:
                x = FusedBatchNormalization()(x)
            x = keras.layers.Activation("relu")(x)
            x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(hp.Float("dropout", 0.1, 0.5, step=0.1, default=0.3))(x)
        x = keras.layers.Dense(hp.Choice("dense_units", [64, 128, 256], default=128),
                               activation="relu")(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=_optimizer(hp), loss="categorical_crossentropy",
                      metrics=["accuracy"], **self.compile_options())
        return model

    def declare_hyperparameters(self, hp):
        """Declare the `fit`-level choices up front.

        KerasTuner discovers a space by calling `build` only; without this the oracle would learn
        of batch size and augmentation after the first trial, which would then run untuned, and a
        resumed search would see a different space from a fresh one.
        """
        _fit_choices(hp)

    def fit(self, hp, model, x, y, callbacks=(), **kwargs):
        """Train with a tuned batch size and, when chosen, flip-and-shift augmentation.

        The batches' order is a function of (seed, epoch), so a training resumed mid-way sees
        the images an uninterrupted one would have (Keras's own shuffle cannot be resumed).
        """
        batch_size, augment = _fit_choices(hp)
        batches_class = AugmentedBatches if augment else ShuffledBatches
        batches = batches_class(x, y, batch_size, seed=self.seed)
        return model.fit(batches, shuffle=False, callbacks=[*callbacks, batches.follow_epochs()],
                         **kwargs)


def _fit_choices(hp) -> tuple[int, bool]:
    return (hp.Choice("batch_size", [64, 128, 256], default=128),
            hp.Boolean("augment", default=False))


def _optimizer(hp):
    name = hp.Choice("optimizer", ["adam", "adamw", "sgd"], default="adam")
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate * 10, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(learning_rate)
