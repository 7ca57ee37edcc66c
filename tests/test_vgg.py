"""`fashion.spaces.vgg`: the vgg spaces' fixed settings, networks, precision, augmentation in
the graph, and their fit under the one-cycle schedule."""

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine.hyperparameters import Fixed

from fashion.errors import ConfigError
from fashion.spaces.networks import NETWORKS
from fashion.spaces.registry import fixed_hyperparameters
from fashion.spaces.schedules import OneCycle
from fashion.spaces.vgg import QuickVGGHyperModel, VGGHyperModel


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

def test_a_precision_given_overrides_the_spaces_own():
    model = VGGHyperModel(precision="mixed_bfloat16").build(keras_tuner.HyperParameters())
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.dtype_policy.name == "mixed_bfloat16"
    assert model.layers[-1].dtype_policy.name == "float32"  # the softmax, whatever the policy
    quick = QuickVGGHyperModel(precision="float32").build(keras_tuner.HyperParameters())
    assert {layer.dtype_policy.name for layer in quick.layers} == {"float32"}


def test_in_graph_augmentation_without_erasing_has_no_eraser():
    # The quick space fixes erase_probability at 0: its graph flips and shifts only.
    model = QuickVGGHyperModel(augment_in_graph=True).build(keras_tuner.HyperParameters())
    names = [type(layer).__name__ for layer in model.get_layer("augmentation").layers]
    assert names == ["RandomFlip", "RandomTranslation"]


def test_the_residual_network_projects_its_shortcut_where_the_width_changes():
    model = VGGHyperModel(network="wrn-16-4").build(keras_tuner.HyperParameters())
    projections = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
                   and layer.kernel_size == (1, 1)]
    widths = NETWORKS["wrn-16-4"].widths
    # One 1x1 projection wherever a stage is wider than what comes in: the input's 1 channel
    # to the first stage, then each change between stages.
    changes = sum(1 for before, after in zip((1, *widths), widths, strict=False)
                  if before != after)
    assert len(projections) == changes
    assert all(not layer.use_bias for layer in projections)  # batch norm follows each
