"""Training images/s of VGG-style networks on this machine: what sized the vgg space.

    PYTHONPATH=src python benchmarks/vgg_throughput.py float32 1,2,1
    PYTHONPATH=src python benchmarks/vgg_throughput.py mixed_bfloat16 2,2,2

Arguments: a Keras dtype policy, and the convolutions at 28x28, 14x14 and 7x7 (32, 64 and 128
filters, 3x3, batch norm, ReLU; max pooling between stages, global average pooling, softmax).
One warm-up fit of 1,280 random images, then one timed epoch of 12,800 at batch 128, AdamW,
steps_per_execution 10. Random pixels train as fast as real ones.
"""

import sys
import time

import keras
import numpy as np

IMAGES = 12_800
WIDTHS = (32, 64, 128)


def build(convolutions: list[int]) -> keras.Model:
    x = inputs = keras.Input((28, 28, 1))
    for stage, (filters, repeats) in enumerate(zip(WIDTHS, convolutions, strict=True)):
        if stage:
            x = keras.layers.MaxPooling2D()(x)
        for _ in range(repeats):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def main(policy: str, convolutions: str) -> None:
    keras.mixed_precision.set_global_policy(policy)
    model = build([int(n) for n in convolutions.split(",")])
    model.compile(keras.optimizers.AdamW(1e-3), "categorical_crossentropy",
                  steps_per_execution=10)
    x = np.random.rand(IMAGES, 28, 28, 1).astype("float32")
    y = keras.utils.to_categorical(np.random.randint(0, 10, IMAGES), 10)
    model.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    rate = IMAGES / (time.perf_counter() - started)
    print(f"{policy} convolutions {convolutions}: {model.count_params():,} parameters, "
          f"{rate:,.0f} images/s, {54_000 / rate:.0f} s for 54,000 images")


if __name__ == "__main__":
    main(*sys.argv[1:3])
