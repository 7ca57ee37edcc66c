"""Search spaces as KerasTuner HyperModels: `build` compiles a model, `fit` owns fit choices.

The mlp and cnn spaces live here, the vgg spaces in `fashion.spaces.vgg`; `build_hypermodel` names
them all.
"""

from __future__ import annotations

import keras
import keras_tuner

from fashion.errors import ConfigError
from fashion.spaces.augment import AugmentedBatches
from fashion.spaces.compile_options import compile_options
from fashion.spaces.vgg import QuickVGGHyperModel, VGGHyperModel
from fashion.storage.classes import INPUT_SHAPE, NUM_CLASSES

# The notebook's learning rates: 1.0, 1e-1, ..., 1e-6.
MLP_LEARNING_RATES = [10.0**-k for k in range(7)]
# The best of the notebook's own search, which it retrained for its published 0.899.
NOTEBOOK_BEST = {"num_layers": 3, "layer_units_0": 504, "layer_units_1": 288,
                 "layer_units_2": 408, "learning_rate": 1e-4}
MLP_MAX_LAYERS = 9
CNN_MIN_BLOCKS, CNN_MAX_BLOCKS = 2, 3


class MLPHyperModel(keras_tuner.HyperModel):
    """The notebook's space: 1-9 ReLU layers of 24-576 units, Adam at 1.0 down to 1e-6."""

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
                      **compile_options(self.family))
        return model


def notebook_best_hyperparameters() -> keras_tuner.HyperParameters:
    """The notebook's best MLP as fixed hyperparameters of `MLPHyperModel`."""
    hp = keras_tuner.HyperParameters()
    for name, value in NOTEBOOK_BEST.items():
        hp.Fixed(name, value)
    return hp


class CNNHyperModel(keras_tuner.HyperModel):
    """Conv blocks with optional batch norm and dropout; batch size and augmentation in `fit`.

    Sized for a CPU: one convolution per block and at most 64 filters keep an epoch of 60,000
    images near the 10 s a conv 32-64 network takes on 2 cores.
    """

    family = "cnn"

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

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
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation("relu")(x)
            x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(hp.Float("dropout", 0.1, 0.5, step=0.1, default=0.3))(x)
        x = keras.layers.Dense(hp.Choice("dense_units", [64, 128, 256], default=128),
                               activation="relu")(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=_optimizer(hp), loss="categorical_crossentropy",
                      metrics=["accuracy"], **compile_options(self.family))
        return model

    def declare_hyperparameters(self, hp):
        """Declare the `fit`-level choices up front.

        KerasTuner discovers a space by calling `build` only; without this the oracle would learn
        of batch size and augmentation after the first trial, which would then run untuned, and a
        resumed search would see a different space from a fresh one.
        """
        _fit_choices(hp)

    def fit(self, hp, model, x, y, **kwargs):
        """Train with a tuned batch size and, when chosen, flip-and-shift augmentation."""
        batch_size, augment = _fit_choices(hp)
        if augment:
            batches = AugmentedBatches(x, y, batch_size, seed=self.seed)
            callbacks = [*kwargs.pop("callbacks", ()), batches.follow_epochs()]
            return model.fit(batches, shuffle=False, callbacks=callbacks, **kwargs)
        return model.fit(x, y, batch_size=batch_size, **kwargs)


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


def build_hypermodel(space: str, seed: int = 0, network: str = "vgg",
                     precision: str | None = None,
                     augment_in_graph: bool = False) -> keras_tuner.HyperModel:
    """Return the HyperModel for a space name, seeded where it draws random numbers.

    `network`, `precision` (a Keras dtype policy; None keeps the space's own) and
    `augment_in_graph` shape the vgg spaces only: the mlp and cnn spaces search their own.

    Raises:
        ConfigError: an unknown space or network name.
    """
    if space == "mlp":
        return MLPHyperModel()
    if space == "cnn":
        return CNNHyperModel(seed=seed)
    spaces = {"vgg": VGGHyperModel, "vgg_quick": QuickVGGHyperModel}
    if space not in spaces:
        raise ConfigError(f"unknown space {space!r}; choose one of mlp, cnn, {', '.join(spaces)}")
    return spaces[space](seed=seed, network=network, precision=precision,
                         augment_in_graph=augment_in_graph)


def fixed_hyperparameters(space: str) -> dict:
    """The settings a space fixes by evidence instead of searching (for the report)."""
    return dict(getattr(build_hypermodel(space), "FIXED", {}))


def hypermodel_for(config) -> keras_tuner.HyperModel:
    """The HyperModel a `RunConfig` trains."""
    return build_hypermodel(config.space, seed=config.seed, network=config.network or "vgg",
                            precision=config.precision,
                            augment_in_graph=bool(config.augment_in_graph))
