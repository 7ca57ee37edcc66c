"""Training images/s of VGG-style networks on this machine: what sized the vgg space.

    PYTHONPATH=src python -m benchmarks.vgg_throughput float32 1,2,1
    PYTHONPATH=src python -m benchmarks.vgg_throughput mixed_bfloat16 2,2,2

Arguments: a Keras dtype policy, and the convolutions at 28x28, 14x14 and 7x7 of
`fashion.spaces.VGGHyperModel` (its default is 1,2,1). The network is built and trained by that
HyperModel with its default hyperparameters, as a run trains it (augmented batches, one-cycle
schedule, compile options): one warm-up epoch of 1,280 random images, then one timed epoch of
12,800. Random pixels train as fast as real ones.
"""

import sys
import time

import keras
import keras_tuner
import numpy as np

from fashion.spaces import VGGHyperModel

IMAGES = 12_800


def measure(policy: str, convolutions: tuple[int, ...]) -> tuple[int, float]:
    """Return the network's parameters and its training images/s."""
    keras.mixed_precision.set_global_policy(policy)
    hypermodel = VGGHyperModel()
    hypermodel.convolutions = convolutions
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)
    rng = np.random.default_rng(0)
    x = rng.random((IMAGES, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, IMAGES), 10)
    hypermodel.fit(hp, model, x[:1280], y[:1280], epochs=1, verbose=0)
    started = time.perf_counter()
    hypermodel.fit(hp, model, x, y, epochs=1, verbose=0)
    return model.count_params(), IMAGES / (time.perf_counter() - started)


def main(policy: str, convolutions: str) -> None:
    parameters, rate = measure(policy, tuple(int(n) for n in convolutions.split(",")))
    print(f"{policy} convolutions {convolutions}: {parameters:,} parameters, "
          f"{rate:,.0f} images/s, {54_000 / rate:.0f} s for 54,000 images")


if __name__ == "__main__":
    main(*sys.argv[1:3])
