import keras
import keras_tuner
import numpy as np
import pytest

from fashion.spaces.compile_options import compile_options
from fashion.spaces.registry import (
    MLP_LEARNING_RATES,
    CNNHyperModel,
    MLPHyperModel,
    build_hypermodel,
)
from fashion.spaces.vgg import QuickVGGHyperModel, VGGHyperModel


def _dense_units(model):
    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]


@pytest.mark.parametrize("depth", [1, 9])
def test_mlp_builds_at_every_depth(depth):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("num_layers", depth)
    model = MLPHyperModel().build(hp)
    assert _dense_units(model) == [24] * depth + [10]
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation is keras.activations.softmax


def test_mlp_space_is_the_notebooks():
    hp = keras_tuner.HyperParameters()
    MLPHyperModel().build(hp)
    units = hp._hps["layer_units_0"][0]
    assert (units.min_value, units.max_value, units.step) == (24, 576, 24)
    assert hp._hps["num_layers"][0].max_value == 9
    assert hp._hps["learning_rate"][0].values == MLP_LEARNING_RATES
    assert MLP_LEARNING_RATES == [1.0, 0.1, 0.01, 0.001, 1e-4, 1e-5, 1e-6]


def test_mlp_layer_units_are_only_active_up_to_the_depth():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("num_layers", 2)
    MLPHyperModel().build(hp)
    hp.values["layer_units_5"] = 48
    assert hp.is_active("layer_units_1") and not hp.is_active("layer_units_5")


@pytest.mark.parametrize("blocks", [2, 3])
def test_cnn_builds_and_fits_one_step(blocks):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", blocks)
    hp.Fixed("augment", True)
    hypermodel = CNNHyperModel(seed=0)
    model = hypermodel.build(hp)
    x = np.random.rand(64, 28, 28, 1).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 10, 10)
    history = hypermodel.fit(hp, model, x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.output_shape == (None, 10)


def test_cnn_filters_of_a_third_block_are_only_active_with_three_blocks():
    hp = keras_tuner.HyperParameters()
    hp.Int("conv_blocks", 2, 3, default=3)
    CNNHyperModel().build(hp)
    assert hp.is_active("filters_2")
    hp.values["conv_blocks"] = 2
    assert hp.is_active("filters_1") and not hp.is_active("filters_2")


@pytest.mark.parametrize("backend, family, expected", [
    ("tensorflow", "mlp", {"jit_compile": True, "steps_per_execution": 50}),
    ("tensorflow", "cnn", {"jit_compile": False, "steps_per_execution": 10}),
    ("jax", "cnn", {"jit_compile": "auto", "steps_per_execution": 10}),
    ("torch", "mlp", {}),  # torch refuses steps_per_execution > 1
])
def test_compile_options_suit_each_backend(backend, family, expected):
    assert compile_options(family, backend) == expected


def test_build_hypermodel_by_name():
    assert isinstance(build_hypermodel("mlp"), MLPHyperModel)
    assert isinstance(build_hypermodel("cnn"), CNNHyperModel)
    assert isinstance(build_hypermodel("vgg"), VGGHyperModel)
    assert isinstance(build_hypermodel("vgg_quick"), QuickVGGHyperModel)
