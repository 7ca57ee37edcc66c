"""The measurements of `benchmarks/speed.py`, each run alone in a fresh interpreter.

    python -m benchmarks.speed_measurements NAME [--quick] [--onnx-path PATH]

prints one line, RESULT {json of the figures}; speed.py starts one such process per row so that
no measurement inherits another's threads, compiled graphs or memory peak. The training
measurements are here, with what every measurement shares (data, models, FLOPs, memory); the
prediction ones are in speed_prediction.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The notebook's MLP (fashion.spaces.mlp.NOTEBOOK_BEST) trains at batch 32.
MLP_BATCH_SIZE = 32
FULL_EPOCH_IMAGES = 60_000

# tuner_images None: the default search sample, RunConfig.search_images. --quick takes 6,400
# images, not 6,000, so that every batch size divides them: a partial last batch would make
# XLA compile a second program inside the timed epochs.
FULL = dict(images=None, epochs=5, latency_calls=1000, throughput_repeats=3, tuner_trials=3,
            tuner_images=None, tuner_val_images=None)
QUICK = dict(images=6400, epochs=2, latency_calls=200, throughput_repeats=1, tuner_trials=2,
             tuner_images=2000, tuner_val_images=1000)
RESULT_PREFIX = "RESULT "


def load_train(images: int | None):
    """Return the splits, with at most `images` training images, and those as (x, one-hot y)."""
    from fashion.storage.dataset import load_fashion_mnist, one_hot, sample_train, split_data

    arrays, _ = load_fashion_mnist()
    splits = sample_train(split_data(arrays), images, seed=0)
    y = one_hot(splits.y_train)
    reset_peak_memory()
    return splits, splits.x_train, y


def epoch_timer():
    """Return a Keras callback that records the wall time of every epoch."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def epoch_figures(seconds: list[float], images: int) -> dict:
    """Median epoch time past the first (tracing, compilation) epoch, and images/s."""
    steady = seconds[1:] or seconds
    epoch_s = float(np.median(steady))
    return {"epoch_s": epoch_s, "images_per_s": images / epoch_s, "images": images,
            "epochs_timed": len(steady)}


def build_model(family: str, settings: str):
    """Build a model through fashion's HyperModel; `settings="keras"` recompiles it plainly.

    Returns (hypermodel, hyperparameters, model). The CNN's hyperparameters are its defaults.
    """
    import keras
    import keras_tuner

    from fashion.spaces.cnn import CNNHyperModel
    from fashion.spaces.mlp import MLPHyperModel, notebook_best_hyperparameters

    if family == "mlp":
        hypermodel, hp = MLPHyperModel(), notebook_best_hyperparameters()
    else:
        hypermodel, hp = CNNHyperModel(), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    if settings == "keras":
        # Same model, loss and optimizer; compile's own defaults instead of compile_options.
        model.compile(optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
                      loss="categorical_crossentropy", metrics=["accuracy"])
    return hypermodel, hp, model


def forward_flops(model) -> int:
    """Floating-point operations of one image's forward pass through Dense and Conv2D layers.

    A multiply-add counts 2; activations, pooling and batch norm are a few percent and left
    out. Training costs about 3x this: the backward pass computes two products of the same size.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Conv2D):
            height, width = layer.output.shape[1:3]
            total += 2 * height * width * int(np.prod(layer.kernel.shape))
    return total


def measure_matmul_peak(size: int = 2048, repeats: int = 10) -> dict:
    """The machine's float32 matrix-multiply rate, the yardstick for every GFLOP/s figure."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return {"gflops": 2 * size**3 / best / 1e9, "size": size}


def measure_keras_training(family: str, settings: str, cfg: dict) -> dict:
    _, x, y = load_train(cfg["images"])
    hypermodel, hp, model = build_model(family, settings)
    timer = epoch_timer()
    if family == "mlp":
        model.fit(x, y, batch_size=MLP_BATCH_SIZE, epochs=cfg["epochs"], callbacks=[timer],
                  verbose=0)
    else:
        hypermodel.fit(hp, model, x, y, epochs=cfg["epochs"], callbacks=[timer], verbose=0)
    return {**epoch_figures(timer.seconds, len(x)), "jit_compile": str(model.jit_compile),
            "steps_per_execution": model.steps_per_execution,
            "flops_per_image": 3 * forward_flops(model)}


def torch_cnn(filters, kernel_size, dense_units, dropout):
    """The default CNN in PyTorch: per block conv (no bias) - batch norm - ReLU - max pool."""
    from torch import nn

    layers, channels = [], 1
    for f in filters:
        layers += [nn.Conv2d(channels, f, kernel_size, padding="same", bias=False),
                   nn.BatchNorm2d(f),
                   nn.ReLU(), nn.MaxPool2d(2)]
        channels = f
    side = 28 // 2 ** len(filters)
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * side * side, dense_units),
               nn.ReLU(), nn.Linear(dense_units, 10)]
    return nn.Sequential(*layers)


class BatchSizeOfFit:
    """Stands in for a Keras model: `fit` returns the batch size it was given."""

    def fit(self, x, y, batch_size=None, **kwargs):
        return batch_size


def measure_torch_training(cfg: dict) -> dict:
    import keras_tuner
    import torch

    from fashion.spaces.cnn import CNNHyperModel

    # Use every core, as TensorFlow does, so the reference is not handicapped.
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    splits, _, _ = load_train(cfg["images"])
    # The Keras CNN's defaults, read from the HyperModel so both sides train the same network:
    # `build` registers the architecture's, and `fit` on a stand-in model hands the batch size.
    hypermodel, hp = CNNHyperModel(), keras_tuner.HyperParameters()
    keras_model = hypermodel.build(hp)
    batch_size = hypermodel.fit(hp, BatchSizeOfFit(), splits.x_train, splits.y_train)
    x = torch.from_numpy(np.ascontiguousarray(splits.x_train.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(splits.y_train)
    model = torch_cnn(filters=[hp.get(f"filters_{i}") for i in range(hp.get("conv_blocks"))],
                      kernel_size=hp.get("kernel_size"), dense_units=hp.get("dense_units"),
                      dropout=hp.get("dropout"))
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.get("learning_rate"))
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    seconds = []
    model.train()
    for _ in range(cfg["epochs"]):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            rows = order[i:i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return {**epoch_figures(seconds, len(x)), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "flops_per_image": 3 * forward_flops(keras_model)}


def measure_tuner_overhead(cfg: dict) -> dict:
    """Time RandomSearch trials of the default CNN space against the `fit` inside each.

    Trials train one epoch on the default search sample (RunConfig.search_images), the
    shortest trial a default Hyperband search runs, so overhead is a worst-case fraction.
    """
    import keras_tuner

    from fashion.spaces.cnn import CNNHyperModel
    from fashion.storage.dataset import one_hot, sample_train
    from fashion.training.config import RunConfig

    class TimedCNN(CNNHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            start = time.perf_counter()
            history = super().fit(hp, model, *args, **kwargs)
            fit_seconds.append(time.perf_counter() - start)
            return history

    class TimedRandomSearch(keras_tuner.RandomSearch):
        # A trial runs from asking the oracle for it to recording its result.
        def pre_create_trial(self):
            super().pre_create_trial()
            self.trial_start = time.perf_counter()

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            trial_seconds.append(time.perf_counter() - self.trial_start)

    fit_seconds, trial_seconds = [], []
    config = RunConfig()
    splits, _, _ = load_train(cfg["images"])
    splits = sample_train(splits, cfg["tuner_images"] or config.search_images, seed=config.seed)
    val_images = cfg["tuner_val_images"] or len(splits.x_val)
    with tempfile.TemporaryDirectory() as directory:
        tuner = TimedRandomSearch(
            hypermodel=TimedCNN(seed=config.seed), objective="val_accuracy",
            max_trials=cfg["tuner_trials"], seed=config.seed, directory=directory,
            project_name="speed")
        validation = (splits.x_val[:val_images], one_hot(splits.y_val[:val_images]))
        tuner.search(splits.x_train, one_hot(splits.y_train), validation_data=validation,
                     epochs=1, verbose=0)
    overhead = [t - f for t, f in zip(trial_seconds, fit_seconds, strict=True)]
    return {"trials": len(trial_seconds), "trial_s": float(np.median(trial_seconds)),
            "fit_s": float(np.median(fit_seconds)), "overhead_s": float(np.median(overhead)),
            "overhead_fraction": float(np.median(overhead) / np.median(fit_seconds)),
            "images": len(splits.x_train), "val_images": val_images}


def reset_peak_memory() -> None:
    """Forget the transient peak of loading the data, so the peak is the measurement's own.

    Linux resets the process's high-water mark, which ru_maxrss reports, on writing 5 to
    clear_refs; elsewhere the peak keeps the loading's and the figure is an upper bound.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib() -> float:
    """Peak resident memory of this process since the last reset, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def run_measurement(name: str, quick: bool, onnx_path: str | None) -> dict:
    """Run the measurement `name` names, e.g. "train:cnn-fashion", and return its figures."""
    cfg = QUICK if quick else FULL
    kind, _, variant = name.partition(":")
    if kind == "train":
        family, settings = variant.split("-")
        result = measure_keras_training(family, settings, cfg)
    elif kind == "matmul":
        result = measure_matmul_peak()
    elif kind == "torch":
        result = measure_torch_training(cfg)
    elif kind == "tuner":
        result = measure_tuner_overhead(cfg)
    elif kind == "predict":
        from benchmarks.speed_prediction import measure_keras_predict

        result = measure_keras_predict(variant, cfg, onnx_path)
    elif kind == "onnx":
        from benchmarks.speed_prediction import measure_onnx_predict

        result = measure_onnx_predict(cfg, onnx_path)
    else:
        raise ValueError(f"unknown measurement {name!r}")
    result.setdefault("peak_mib", peak_mib())
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="e.g. train:cnn-fashion, torch, tuner, predict:mlp, onnx")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--onnx-path")
    args = parser.parse_args(argv)
    figures = run_measurement(args.name, args.quick, args.onnx_path)
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
