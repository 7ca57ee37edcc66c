"""The notebook's space: a multilayer perceptron, searched in depth, widths and learning rate."""

from __future__ import annotations

import keras
import keras_tuner

from fashion.spaces.augment import ShuffledBatches
from fashion.spaces.base import SearchSpace
from fashion.storage.classes import INPUT_SHAPE, NUM_CLASSES

# The notebook's learning rates: 1.0, 1e-1, ..., 1e-6.
MLP_LEARNING_RATES = [10.0**-k for k in range(7)]
# The best of the notebook's own search, which it retrained for its published 0.899.
NOTEBOOK_BEST = {"num_layers": 3, "layer_units_0": 504, "layer_units_1": 288,
                 "layer_units_2": 408, "learning_rate": 1e-4}
MLP_MAX_LAYERS = 9
# Keras's default batch size, which the notebook trained with.
MLP_BATCH_SIZE = 32


class MLPHyperModel(SearchSpace):
    """The notebook's space: 1-9 ReLU layers of 24-576 units, Adam at 1.0 down to 1e-6."""

    name = "mlp"
    family = "mlp"

    def build(self, hp):
        model = keras.Sequential([keras.Input(INPUT_SHAPE), keras.layers.Flatten()])
        for i in range(hp.Int("num_layers", 1, MLP_MAX_LAYERS)):
            with hp.conditional_scope("num_layers", list(range(i + 1, MLP_MAX_LAYERS + 1))):
                units = hp.Int(f"layer_units_{i}", min_value=24, max_value=576, step=24)
            model.add(keras.layers.Dense(units, activation="relu"))
        model.add(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
        learning_rate = hp.Choice("learning_rate", MLP_LEARNING_RATES)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="categorical_crossentropy", metrics=["accuracy"],
                      **self.compile_options())
        return model

    def fit(self, hp, model, x, y, callbacks=(), **kwargs):
        """Train on batches whose order is a function of (seed, epoch), so a training resumed
        mid-way sees the images an uninterrupted one would have (Keras's own shuffle cannot be
        resumed)."""
        batches = ShuffledBatches(x, y, kwargs.pop("batch_size", MLP_BATCH_SIZE), seed=self.seed)
        return model.fit(batches, shuffle=False, callbacks=[*callbacks, batches.follow_epochs()],
                         **kwargs)


def notebook_best_hyperparameters() -> keras_tuner.HyperParameters:
    """The notebook's best MLP as fixed hyperparameters of `MLPHyperModel`."""
    hp = keras_tuner.HyperParameters()
    for name, value in NOTEBOOK_BEST.items():
        hp.Fixed(name, value)
    return hp
