"""Where one training epoch of a vgg-space network spends its time, part by part.

Part of `benchmarks.roofline`, which prints it. Each part is timed by an experiment that
isolates it, on the model the space builds, over the same number of batches, and differences
attribute the rest (TensorFlow backend: the compiled functions are `tf.function`s):

- augmentation: `AugmentedBatches.__getitem__` alone, for every batch of the epoch;
- input pipeline: Keras iterating that PyDataset as `fit` does (its prefetched tf.data
  dataset) without training, less the augmentation it calls;
- convolutions forward and backward: each Conv2D layer alone, compiled, on a batch of its input
  shape, forward, then forward plus the gradients training takes (kernel, and input for all
  but the first layer, whose input is the image); backward is the difference;
- other layers forward and backward (batch norm, activations, pooling, dropout, dense, loss):
  a compiled forward pass, and forward + loss + gradients without the optimizer, less the
  convolutions;
- optimizer update: the model's own compiled `train_step` on in-memory tensors, less forward +
  gradients (it also updates the loss and accuracy metrics);
- Python/framework overhead: a real `fit` epoch (the space's own `fit`: PyDataset, one-cycle
  schedule, `steps_per_execution`), the faster of two after one that compiles, less all of the
  above; what it pays once an epoch (before its first batch, after its last) is not scaled. tf.data
  prefetches batches on a thread of its own, so input can overlap training and the remainder
  can come out below zero.
"""

from __future__ import annotations

import time

import keras
import keras_tuner
import numpy as np

from fashion.spaces.augment import AugmentedBatches
from fashion.spaces.registry import build_hypermodel

# The training images a full epoch has on the seed split (60,000 less 6,000 for validation).
EPOCH_IMAGES = 54_000
# The parts, in the order printed; they add up to the `fit` epoch.
PARTS = ("convolutions forward", "convolutions backward", "other layers forward",
         "other layers backward", "optimizer update", "augmentation (host)", "input pipeline",
         "Python/framework overhead")


def build_space_model(config, network: str, precision: str):
    """Build the model the config's space trains for `network` in `precision`, as a run does.

    Returns (hypermodel, hp, compiled model).
    """
    hypermodel = build_hypermodel(config.space, seed=config.seed, network=network,
                                  precision=precision, augment_in_graph=False)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    keras.backend.clear_session()
    return hypermodel, hp, hypermodel.build(hp)


def profile_epoch(config, network: str, precision: str, batches: int = 40) -> dict:
    """Time each part of `batches` batches of training; return seconds per full epoch by part.

    Returns a dict: "parts" (part -> seconds, scaled to `EPOCH_IMAGES` images), "fit_epoch"
    (their total: a real fit epoch, its batches scaled), "fit_epoch_once" (the seconds of it
    paid once an epoch: the iterator, epoch callbacks), "measured_images" and the settings.
    """
    import tensorflow as tf  # the compiled experiments below are tf.functions

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("the epoch profile needs Keras on the TensorFlow backend")
    hypermodel, hp, model = build_space_model(config, network, precision)
    size = hypermodel.batch_size
    rng = np.random.default_rng(0)
    x = rng.random((batches * size, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)
    host = AugmentedBatches(x, y, size, seed=config.seed,
                            erase_probability=hp.get("erase_probability"))
    seconds = {"augmentation": time_calls(host.__getitem__, [(i,) for i in range(batches)])}
    seconds["iteration"] = time_iteration(host)
    seconds["conv_forward"], seconds["conv_total"] = time_convolutions(model, size, batches)
    seconds.update(time_model(model, tf.constant(x[:size]), tf.constant(y[:size]), batches))
    seconds["fit"], once = time_fit_epoch(hypermodel, hp, model, x, y)
    scale = EPOCH_IMAGES / (batches * size)
    scaled = {name: scale * value for name, value in seconds.items()}
    scaled["fit"] += once  # paid once an epoch however long it is: not scaled
    return {"network": network, "precision": precision, "batch_size": size,
            "measured_images": batches * size, "parts": attribute(scaled),
            "fit_epoch": scaled["fit"], "fit_epoch_once": once}


def attribute(seconds: dict) -> dict:
    """Split the measured seconds into `PARTS`: the isolated ones as they are, the rest by
    difference."""
    conv_backward = seconds["conv_total"] - seconds["conv_forward"]
    parts = [seconds["conv_forward"], conv_backward,
             seconds["forward"] - seconds["conv_forward"],
             seconds["gradients"] - seconds["forward"] - conv_backward,
             seconds["step"] - seconds["gradients"], seconds["augmentation"],
             seconds["iteration"] - seconds["augmentation"]]
    return dict(zip(PARTS, [*parts, seconds["fit"] - seconds["step"] - seconds["iteration"]],
                    strict=True))


def time_calls(function, calls: list[tuple]) -> float:
    """Seconds `function` takes for `calls` (argument tuples), after one untimed call that
    traces it. TensorFlow's eager calls return when their results are computed."""
    function(*calls[0])
    start = time.perf_counter()
    for arguments in calls:
        function(*arguments)
    return time.perf_counter() - start


def time_iteration(batches) -> float:
    """Seconds Keras takes to deliver every batch of a PyDataset as `fit` would, training
    nothing, through the data adapter `fit` builds (`fashion.tuning.upstream.fit_data_adapter`)."""
    from fashion.tuning.upstream import fit_data_adapter

    adapter = fit_data_adapter(batches)
    dataset = adapter.get_tf_dataset()  # reads a few batches for their shapes: not timed
    adapter.on_epoch_begin()
    iterator = iter(dataset)  # once an epoch, so left to the fit epoch's unscaled part
    start = time.perf_counter()
    for _ in iterator:
        pass
    seconds = time.perf_counter() - start
    adapter.on_epoch_end()
    return seconds


def time_convolutions(model, batch_size: int, batches: int) -> tuple[float, float]:
    """Seconds the model's Conv2D layers take alone: (forward, forward + backward)."""
    forward = total = 0.0
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for index, layer in enumerate(convolutions):
        layer_forward, layer_total = _time_convolution(layer, batch_size, batches,
                                                       input_gradient=index > 0)
        forward, total = forward + layer_forward, total + layer_total
    return forward, total


def _time_convolution(layer, batch_size, batches, input_gradient):
    import tensorflow as tf

    dtype = layer.compute_dtype
    x = keras.random.normal((batch_size, *layer.input.shape[1:]), dtype=dtype, seed=1)
    upstream = keras.random.normal((batch_size, *layer.output.shape[1:]), dtype=dtype, seed=2)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x)
        sources = [layer.kernel, x] if input_gradient else [layer.kernel]
        return tape.gradient(outputs, sources, output_gradients=upstream)

    calls = [(x,)] * batches
    return time_calls(tf.function(layer.__call__), calls), time_calls(forward_backward, calls)


def time_model(model, x, y, batches: int) -> dict:
    """Seconds of a compiled forward pass, of forward + loss + gradients, and of the model's
    whole `train_step`, each over `batches` calls on one in-memory batch."""
    import tensorflow as tf

    @tf.function
    def gradients(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)
        return tape.gradient(loss, model.trainable_weights)

    model.optimizer.build(model.trainable_variables)  # its variables, before tracing
    forward = tf.function(lambda x: model(x, training=True))
    step = tf.function(lambda x, y: model.train_step((x, y)))
    pairs = [(x, y)] * batches
    return {"forward": time_calls(forward, [(x,)] * batches),
            "gradients": time_calls(gradients, pairs), "step": time_calls(step, pairs)}


class EpochClock(keras.callbacks.Callback):
    """When each epoch `fit` trains began and ended, and its first and last batches."""

    def __init__(self):
        super().__init__()
        self.epochs: list[dict[str, float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append({"epoch_begin": time.perf_counter()})

    def on_train_batch_begin(self, batch, logs=None):
        self.epochs[-1].setdefault("first_batch_begin", time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1]["last_batch_end"] = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[-1]["epoch_end"] = time.perf_counter()


def time_fit_epoch(hypermodel, hp, model, x, y, epochs: int = 3) -> tuple[float, float]:
    """Seconds of a real `fit` epoch through the space's own `fit`: the fastest of `epochs`
    after the first (which compiles), as (its batches, what it pays once: before the first
    batch and after the last)."""
    clock = EpochClock()
    hypermodel.fit(hp, model, x, y, epochs=epochs, verbose=0, callbacks=[clock])
    t = min(clock.epochs[1:], key=lambda t: t["epoch_end"] - t["epoch_begin"])
    return (t["last_batch_end"] - t["first_batch_begin"],
            t["first_batch_begin"] - t["epoch_begin"] + t["epoch_end"] - t["last_batch_end"])
