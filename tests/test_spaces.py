import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

import fashion
from fashion.errors import ConfigError
from fashion.spaces.base import SearchSpace
from fashion.spaces.cnn import CNNHyperModel
from fashion.spaces.compile_options import compile_options
from fashion.spaces.mlp import MLP_LEARNING_RATES, MLPHyperModel
from fashion.spaces.registry import (
    build_hypermodel,
    fixed_hyperparameters,
    space_class,
    space_names,
    supports_deadline,
    takes_photos,
    unregister_space,
)
from fashion.spaces.vgg import QuickVGGHyperModel, VGGHyperModel
from fashion.storage.classes import PHOTO_SHAPE


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


# The registry: every reader asks it, a built-in space loads on first use, a new one is a class.

def test_built_in_spaces_declare_what_the_registry_says_of_them():
    assert space_names()[:5] == ("mlp", "cnn", "vgg", "vgg_quick", "photo")
    for name in ("mlp", "cnn", "vgg", "vgg_quick", "photo"):
        cls = space_class(name)
        assert issubclass(cls, SearchSpace) and cls.name == name
        # The registry states these traits without importing the class: it must say the same.
        assert supports_deadline(name) == cls.supports_deadline
        assert takes_photos(name) == (cls.input_shape == PHOTO_SHAPE) == (name == "photo")


@pytest.mark.parametrize("name, family, averages_flips, batch_size, search_share", [
    ("mlp", "mlp", False, None, 0.0),
    ("cnn", "cnn", False, None, 0.0),
    ("vgg", "cnn", True, 128, 0.1),  # the best preset's search had 6 of its 60 minutes
    ("vgg_quick", "cnn", True, 128, 0.0),  # it searches nothing
])
def test_each_space_declares_its_traits(name, family, averages_flips, batch_size,
                                        search_share):
    cls = space_class(name)
    assert (cls.family, cls.averages_flips, cls.batch_size, cls.search_share) == \
        (family, averages_flips, batch_size, search_share)


def test_unknown_space_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="unknown space 'nope'; choose one of mlp, cnn, vgg, "
                                          "vgg_quick"):
        space_class("nope")


def test_the_registry_lists_and_checks_spaces_without_importing_keras():
    # The CLI builds its parser, and --print-config checks a config, in a fraction of a second.
    script = ("import sys; from fashion.training.config import config_from_preset; "
              "config_from_preset('best'); print('keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False", done.stderr


class ToySpace(fashion.SearchSpace):
    """A one-layer dense net of fixed width, searched in its learning rate only."""

    name = "toy"
    family = "mlp"
    fixed = {"units": 16}

    def build(self, hp):
        for name, value in self.fixed.items():
            hp.Fixed(name, value)
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(hp.get("units"), activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Choice("learning_rate", [1e-3, 1e-2])),
                      loss="categorical_crossentropy", metrics=["accuracy"],
                      **self.compile_options())
        return model


@pytest.fixture
def toy_space():
    """ToySpace registered for one test, forgotten after it."""
    fashion.register_space(ToySpace)
    yield ToySpace
    unregister_space(ToySpace.name)


@pytest.mark.integration
def test_a_registered_space_runs_end_to_end(toy_space, data_dir, tmp_path):
    config = fashion.config_from_preset(
        "cnn", space="toy", limit=200, tuner="random", max_trials=1, max_epochs=1,
        final_epochs=1, time_budget=None, search_images=None, data_dir=str(data_dir))
    result = fashion.run(config, tmp_path / "run", verbose=0)
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0
    assert result.model.count_params() == 28 * 28 * 16 + 16 + 16 * 10 + 10
    assert (result.run_dir / "metrics.json").is_file()
    report = (result.run_dir / "report.md").read_text()
    assert "TOY space" in report and "units = 16" in report
    assert fixed_hyperparameters("toy") == {"units": 16}


def test_a_registered_space_is_gone_once_unregistered(toy_space):
    assert "toy" in space_names() and isinstance(build_hypermodel("toy"), ToySpace)
    unregister_space("toy")
    with pytest.raises(ConfigError, match="unknown space 'toy'"):
        fashion.RunConfig(space="toy")
    fashion.register_space(ToySpace)  # for the fixture to forget


def _space(**traits):
    return type("Bad", (ToySpace,), traits)


@pytest.mark.parametrize("cls, message", [
    (_space(name="cnn"), r"a space named 'cnn' is already registered \(built in\)"),
    (_space(), r"a space named 'toy' is already registered \(by test_spaces.ToySpace\)"),
    (keras_tuner.HyperModel, "register_space takes a subclass of fashion.SearchSpace"),
    (ToySpace(), "register_space takes a subclass of fashion.SearchSpace"),
    (_space(name=""), "Bad has no name"),
    (_space(name="bad", family="rnn"), r"Bad.family is 'rnn'; choose one of mlp, cnn"),
    (_space(name="bad", supports_deadline=True), "Bad supports a deadline, so it needs a "
                                                 "batch_size"),
])
def test_a_bad_registration_is_refused(toy_space, cls, message):
    with pytest.raises(ConfigError, match=message):
        fashion.register_space(cls)
    assert space_names().count("toy") == 1 and "bad" not in space_names()


def test_only_a_registered_space_can_be_unregistered():
    with pytest.raises(ConfigError, match="no space named 'vgg' was registered"):
        unregister_space("vgg")
