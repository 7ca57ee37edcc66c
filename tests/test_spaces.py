import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine.hyperparameters import Fixed

import fashion
from fashion.errors import ConfigError
from fashion.spaces.augment import AugmentedBatches, ShuffledBatches, erase_random_rectangles
from fashion.spaces.base import SearchSpace
from fashion.spaces.cnn import CNNHyperModel
from fashion.spaces.compile_options import compile_options
from fashion.spaces.mlp import MLP_LEARNING_RATES, MLPHyperModel
from fashion.spaces.networks import NETWORKS
from fashion.spaces.registry import (
    build_hypermodel,
    fixed_hyperparameters,
    space_class,
    space_names,
    supports_deadline,
    takes_photos,
    unregister_space,
)
from fashion.spaces.schedules import OneCycle
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


def test_vgg_space_fits_with_its_schedule_and_erasing():
    hp = keras_tuner.HyperParameters()
    hypermodel = VGGHyperModel(seed=0)
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)
    assert hp.get("erase_probability") == 0.5 and hp.get("label_smoothing") == 0.1
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] \
        == [32, 64, 64, 128]
    x = np.random.rand(64, 28, 28, 1).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 10, 10)
    history = hypermodel.fit(hp, model, x, y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    # One step an epoch: the second, last step ran at half-way through the one-cycle schedule.
    assert float(model.optimizer.learning_rate) == pytest.approx(
        OneCycle(hp.get("learning_rate")).rate(0.5), rel=1e-5)


def test_quick_vgg_space_fixes_every_setting_and_computes_in_bfloat16():
    hp = keras_tuner.HyperParameters()
    hypermodel = QuickVGGHyperModel(seed=0)
    model = hypermodel.build(hp)
    tunable = [p.name for p in hp.space if not isinstance(p, Fixed)]
    assert tunable == []
    assert {name: hp.get(name) for name in QuickVGGHyperModel.fixed} == QuickVGGHyperModel.fixed
    assert hp.get("label_smoothing") == 0.1 and hp.get("erase_probability") == 0.0
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.dtype_policy.name == "mixed_bfloat16" and conv.variable_dtype == "float32"
    assert model.layers[-1].compute_dtype == "float32"  # the softmax
    x = np.random.rand(64, 28, 28, 1).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 10, 10)
    history = hypermodel.fit(hp, model, x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:2], verbose=0).dtype == np.float32


def test_vgg_space_keeps_keras_global_precision():
    model = VGGHyperModel().build(keras_tuner.HyperParameters())
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_vgg_space_searches_only_what_short_trials_can_rank():
    hp = keras_tuner.HyperParameters()
    VGGHyperModel(seed=0).build(hp)
    searched = sorted(p.name for p in hp.space if not isinstance(p, Fixed))
    assert searched == ["dropout", "learning_rate", "weight_decay"]
    assert fixed_hyperparameters("vgg") == {"label_smoothing": 0.1, "erase_probability": 0.5}
    assert fixed_hyperparameters("cnn") == {}


@pytest.mark.parametrize("network, parameters", [
    ("vgg", 193_194), ("vgg-wide", None), ("vgg-2x", None), ("wrn-16-4", None)])
def test_each_network_builds_at_its_width(network, parameters):
    model = VGGHyperModel(network=network).build(keras_tuner.HyperParameters())
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
                    and layer.kernel_size == (3, 3)]
    shape = NETWORKS[network]
    assert len(convolutions) == sum(shape.convolutions)
    assert sorted({layer.filters for layer in convolutions}) == sorted(shape.widths)
    has_shortcuts = any(isinstance(layer, keras.layers.Add) for layer in model.layers)
    assert has_shortcuts == shape.residual
    if parameters:
        assert model.count_params() == parameters  # the network every preset was measured with


def test_unknown_network_is_refused():
    with pytest.raises(ConfigError, match="unknown network 'vgg-9x'; choose one of vgg, "):
        VGGHyperModel(network="vgg-9x")


def test_in_graph_augmentation_trains_and_leaves_inference_alone():
    hp = keras_tuner.HyperParameters()
    hypermodel = VGGHyperModel(seed=0, augment_in_graph=True)
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)
    augmentation = model.get_layer("augmentation")
    names = [type(layer).__name__ for layer in augmentation.layers]
    assert names == ["RandomFlip", "RandomTranslation", "RandomErasing"]
    x = np.random.rand(64, 28, 28, 1).astype("float32")
    # Inference: the layers pass images through; training: they change them.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(augmentation(x, training=True)), x)
    # Erasing as the host path erases: zeros in about half the images, and pixels stay in
    # [0, 1]. Only the eraser, on a blank image: shifts would add zeros at the borders.
    eraser = augmentation.layers[-1]
    erased = keras.ops.convert_to_numpy(eraser(np.ones((400, 28, 28, 1), "float32"),
                                               training=True))
    assert erased.min() == 0.0 and erased.max() == 1.0
    zeros = (erased == 0).sum(axis=(1, 2, 3))
    assert 140 < (zeros > 0).sum() < 260
    assert 16 <= zeros[zeros > 0].min() and zeros.max() <= 144  # sides of 4 to 12 pixels
    y = keras.utils.to_categorical(np.arange(64) % 10, 10)
    history = hypermodel.fit(hp, model, x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


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
