"""The roofline benchmark's arithmetic: FLOPs counted per layer, a peak measured, a verdict."""

import keras
import pytest

from benchmarks.profile_epoch import PARTS, build_space_model
from benchmarks.roofline import (
    count_multiply_adds,
    measure_peak,
    training_flops,
    verdict,
)
from fashion.spaces.networks import NETWORKS
from fashion.training.config import config_from_preset


def test_counts_every_convolution_and_dense_layer_exactly():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 pixels * 3*3*3*4
    x = keras.layers.Conv2D(2, 3, strides=2)(x)  # 3*3 pixels * 3*3*4*2
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))  # 18*5
    model = keras.Model(inputs, outputs)

    assert count_multiply_adds(model) == {"conv": 6912 + 648, "dense": 90}
    assert training_flops(model) == 2 * 3 * (6912 + 648 + 90)


def test_counts_dense_layers_at_each_position_and_inside_nested_models():
    inputs = keras.Input((4, 6))
    x = keras.Sequential([keras.layers.Dense(3)])(inputs)  # 4 positions * 6*3
    model = keras.Model(inputs, keras.layers.Dense(2)(x))  # 4 positions * 3*2

    assert count_multiply_adds(model) == {"conv": 0, "dense": 72 + 24}


def test_the_vgg_model_has_the_arithmetic_of_its_network():
    model = build_space_model(config_from_preset("default"), "vgg", "float32")[2]

    counts = count_multiply_adds(model)

    assert counts["conv"] == NETWORKS["vgg"].multiply_adds()
    assert counts["dense"] == 7 * 7 * 128 * 10


def test_measures_a_matmul_peak():
    assert measure_peak("float32", size=32, repeats=2, min_seconds=0) > 0


@pytest.mark.parametrize(("largest", "words"), [
    (PARTS[7], "Python and framework overhead"),
    (PARTS[6], "input-bound"),
    (PARTS[2], "layers around the convolutions"),
])
def test_the_verdict_names_the_largest_part(largest, words):
    parts = dict.fromkeys(PARTS, 1.0) | {largest: 10.0}
    profile = {"parts": parts, "fit_epoch": sum(parts.values())}
    row = {"network": "vgg", "precision": "float32", "flops_per_s": 2e10}

    text = verdict(row, 1e11, profile, conv_flops_per_s=6e10)

    assert "reaches 20% of this CPU's measured float32 peak" in text
    assert words in text


def test_the_verdict_distrusts_ratios_above_the_peak():
    profile = {"parts": dict.fromkeys(PARTS, 1.0), "fit_epoch": 8.0}
    row = {"network": "vgg", "precision": "float32", "flops_per_s": 2e11}

    assert "measured low" in verdict(row, 1e11, profile, conv_flops_per_s=6e10)
