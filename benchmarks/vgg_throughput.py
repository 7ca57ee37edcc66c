"""Training images/s of the vgg spaces' networks on this machine: what sized the ladder.

    PYTHONPATH=src python -m benchmarks.vgg_throughput float32 vgg
    PYTHONPATH=src python -m benchmarks.vgg_throughput mixed_bfloat16 vgg-2x

Arguments: a precision (`fashion.training.config.PRECISIONS`) and a network
(`fashion.spaces.networks`). The network is built and trained by
`fashion.spaces.vgg.VGGHyperModel` with its default hyperparameters, as a run trains it
(augmented batches, one-cycle schedule, compile options): one warm-up epoch of 1,280 random
images, then one timed epoch of 12,800 (a longer, steadier figure than the few seconds a
budget's plan measures). Random pixels train as fast as real ones.
"""

import sys
import time

import keras
import keras_tuner
import numpy as np

from fashion.spaces.vgg import VGGHyperModel

IMAGES = 12_800


def measure(precision: str, network: str) -> tuple[int, float]:
    """Return the network's parameters and its training images/s."""
    hypermodel = VGGHyperModel(network=network, precision=precision)
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


def main(precision: str, network: str) -> None:
    parameters, rate = measure(precision, network)
    print(f"{network} in {precision}: {parameters:,} parameters, {rate:,.0f} images/s, "
          f"{54_000 / rate:.0f} s for 54,000 images")


if __name__ == "__main__":
    main(*sys.argv[1:3])
