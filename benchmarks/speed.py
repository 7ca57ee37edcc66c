"""Speed of fashion on this machine: training epochs, tuner overhead, prediction, memory.

Prints one table (issue 7), every row measured in this run on this machine:

- seconds per training epoch and images/s for the notebook's MLP (504-288-408 ReLU, Adam,
  batch 32) and for the default CNN (`CNNHyperModel` with its default hyperparameters, trained
  through `hypermodel.fit`), each compiled with `fashion.spaces.compile_options` and with
  Keras's plain defaults (jit_compile="auto", steps_per_execution=1);
- the same CNN in a plain PyTorch loop, the outside reference (skipped when torch is absent);
- the tuner's overhead per trial: a KerasTuner RandomSearch trial's time minus its `fit`'s;
- single-image latency p50/p99 in process (a compiled function, not `model.predict`) and
  throughput for a batch of 10,000 images, with Keras and with ONNX Runtime;
- the peak resident memory (ru_maxrss) of each measurement, each run in its own subprocess so
  the figure is its own and no measurement inherits another's threads or compiled graphs;
- GFLOP/s achieved (Dense and Conv2D multiply-adds; training counted as 3x the forward pass)
  against the machine's float32 matmul rate, to tell compute-bound rows from overhead-bound ones.

Epoch figures are medians over the epochs after the first (which pays for tracing and XLA
compilation); epochs train without validation so they time training alone. The goals of
issue 7 are judged from images/s, so a --quick run projects them onto a 60,000-image epoch.

Run from the repository root:

    PYTHONPATH=src python benchmarks/speed.py             # full size; < 15 minutes on 2 cores
    PYTHONPATH=src python benchmarks/speed.py --quick     # 6,400 images, 2 epochs: a check
    PYTHONPATH=src python benchmarks/speed.py --markdown  # the table as Markdown

Timings are only worth reporting on an otherwise idle machine: the header prints the load
average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The notebook's MLP: three ReLU layers, Adam, batch 32.
MLP_UNITS = (504, 288, 408)
MLP_BATCH_SIZE = 32
MLP_LEARNING_RATE = 1e-3
FULL_EPOCH_IMAGES = 60_000

# tuner_images None: the default search sample, RunConfig.search_images. --quick takes 6,400
# images, not 6,000, so that every batch size divides them: a partial last batch would make
# XLA compile a second program inside the timed epochs.
FULL = dict(images=None, epochs=5, latency_calls=1000, throughput_repeats=3, tuner_trials=3,
            tuner_images=None, tuner_val_images=None)
QUICK = dict(images=6400, epochs=2, latency_calls=200, throughput_repeats=1, tuner_trials=2,
             tuner_images=2000, tuner_val_images=1000)
PREDICT_IMAGES = 10_000
# Batch throughput feeds the 10,000 images in chunks: a single 10,000-image CNN call would
# hold ~1 GB of first-layer activations, and chunks this size already amortise the call cost.
PREDICT_CHUNK = 1000
LATENCY_WARMUP_CALLS = 20
CHILD_TIMEOUT_S = 600
RESULT_PREFIX = "RESULT "

# Goals of issue 7.
GOAL_MLP_EPOCH_S = 4.0
GOAL_MLP_VS_DEFAULTS = 2.0
GOAL_CNN_VS_TORCH = 1.5
GOAL_P50_MS = 2.0
GOAL_BATCH_IMAGES_PER_S = 20_000
GOAL_TUNER_OVERHEAD = 0.05


# --------------------------------------------------------------------------------------------
# Measurements: each runs in a child process and returns a dict of figures.
# --------------------------------------------------------------------------------------------

def load_train(images: int | None):
    """Return the splits, with at most `images` training images, and those as (x, one-hot y)."""
    from fashion.data import load_fashion_mnist, one_hot, sample_train, split_data

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


def mlp_hyperparameters():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("num_layers", len(MLP_UNITS))
    for i, units in enumerate(MLP_UNITS):
        hp.Fixed(f"layer_units_{i}", units)
    hp.Fixed("learning_rate", MLP_LEARNING_RATE)
    return hp


def build_model(family: str, settings: str):
    """Build a model through fashion's HyperModel; `settings="keras"` recompiles it plainly.

    Returns (hypermodel, hyperparameters, model). The CNN's hyperparameters are its defaults.
    """
    import keras
    import keras_tuner

    from fashion.spaces import CNNHyperModel, MLPHyperModel

    if family == "mlp":
        hypermodel, hp = MLPHyperModel(), mlp_hyperparameters()
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

    from fashion.spaces import CNNHyperModel

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

    from fashion.config import RunConfig
    from fashion.data import one_hot, sample_train
    from fashion.spaces import CNNHyperModel

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


def latency_ms(call, image, calls: int) -> tuple[float, float]:
    """Return p50 and p99 in ms of `call(image)` after a warm-up."""
    for _ in range(LATENCY_WARMUP_CALLS):
        call(image)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call(image)
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def batch_images_per_s(call, images, repeats: int) -> float:
    """Median images/s of predicting all `images` in PREDICT_CHUNK-sized calls."""
    call(images[:PREDICT_CHUNK])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), PREDICT_CHUNK):
            call(images[i:i + PREDICT_CHUNK])
        times.append(time.perf_counter() - start)
    return len(images) / float(np.median(times))


def predict_images(count: int) -> np.ndarray:
    """Test images as the model sees them: float32 (N, 28, 28, 1)."""
    from fashion.data import load_fashion_mnist, scale_images

    (_, _), (x_test, _) = load_fashion_mnist()[0]
    images = scale_images(x_test[:count])
    reset_peak_memory()
    return images


def keras_predict_function(model):
    """Return images -> probabilities as one compiled function (no `predict()` per call)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda images: compiled(tf.convert_to_tensor(images)).numpy()
    return lambda images: keras.ops.convert_to_numpy(model(images, training=False))


def measure_keras_predict(family: str, cfg: dict, onnx_path: str | None) -> dict:
    """Latency and throughput of the untrained model (speed does not depend on the weights).

    Then exports it to `onnx_path` for the ONNX Runtime measurement, after reading the peak
    memory so that the export's own memory is not counted.
    """
    images = predict_images(PREDICT_IMAGES)
    _, _, model = build_model(family, "fashion")
    predict = keras_predict_function(model)
    p50, p99 = latency_ms(predict, images[:1], cfg["latency_calls"])
    throughput = batch_images_per_s(predict, images, cfg["throughput_repeats"])
    result = {"p50_ms": p50, "p99_ms": p99, "images_per_s": throughput, "peak_mib": peak_mib(),
              "flops_per_image": forward_flops(model)}
    if onnx_path:
        result["onnx"] = export_onnx(model, onnx_path)
        # The ONNX Runtime process reads the same images from here, so it needs no TensorFlow.
        np.save(images_path(onnx_path), images)
    return result


def images_path(onnx_path: str) -> Path:
    return Path(onnx_path).with_suffix(".images.npy")


def export_onnx(model, path: str) -> str:
    """Export with fashion.export when it exists, else Keras's ONNX export; return how."""
    try:
        from fashion import export
    except ImportError:
        export = None
    if export is not None and hasattr(export, "export_onnx"):
        export.export_onnx(model, path)
        return "fashion.export"
    model.export(path, format="onnx", verbose=False)
    return "keras model.export"


def measure_onnx_predict(cfg: dict, onnx_path: str) -> dict:
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images = np.load(images_path(onnx_path))
    reset_peak_memory()

    def predict(batch):
        return session.run(None, {name: batch})[0]

    p50, p99 = latency_ms(predict, images[:1], cfg["latency_calls"])
    throughput = batch_images_per_s(predict, images, cfg["throughput_repeats"])
    return {"p50_ms": p50, "p99_ms": p99, "images_per_s": throughput,
            "onnxruntime": onnxruntime.__version__}


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


def run_measurement(args) -> dict:
    """Child process entry point: run the measurement `args.child` names."""
    cfg = QUICK if args.quick else FULL
    kind, _, variant = args.child.partition(":")
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
        result = measure_keras_predict(variant, cfg, args.onnx_path)
    elif kind == "onnx":
        result = measure_onnx_predict(cfg, args.onnx_path)
    else:
        raise ValueError(f"unknown measurement {args.child!r}")
    result.setdefault("peak_mib", peak_mib())
    return result


# --------------------------------------------------------------------------------------------
# Parent: run each measurement in a subprocess, then judge the goals and print the table.
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    what: str
    epoch_s: float | None = None
    images_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_mib: float | None = None
    gflops: float | None = None
    goal: str = ""
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


def run_child(name: str, args, onnx_path: str | None = None) -> tuple[dict | None, str]:
    """Run one measurement in a fresh interpreter; return its figures, or None and why not."""
    quick = args is not None and args.quick
    command = [sys.executable, __file__, "--child", name] + (["--quick"] if quick else [])
    if onnx_path:
        command += ["--onnx-path", onnx_path]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"  measuring {name} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"{name} ran past {CHILD_TIMEOUT_S} s"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):]), ""
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"{name} failed (exit {done.returncode}): {last}"


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def achieved_gflops(f: dict, flops_per_image: int | None = None) -> float:
    return f["images_per_s"] * (flops_per_image or f["flops_per_image"]) / 1e9


def peak_row(notes: list[str]) -> Row:
    f, why = run_child("matmul", None)
    row = Row("Machine peak: float32 matmul (NumPy)")
    if not f:
        notes.append(why)
        return row
    row.gflops, row.peak_mib = f["gflops"], f["peak_mib"]
    row.notes.append(f"best of 10 products of {f['size']}x{f['size']} matrices; "
                     "the yardstick of the GFLOP/s column")
    return row


def training_rows(args, notes: list[str]) -> list[Row]:
    figures = {}
    for family in ("mlp", "cnn"):
        for settings in ("fashion", "keras"):
            figures[family, settings], why = run_child(f"train:{family}-{settings}", args)
            if why:
                notes.append(why)
    if has_module("torch"):
        figures["torch"], why = run_child("torch", args)
        if why:
            notes.append(why)
    else:
        figures["torch"] = None
        notes.append("PyTorch reference skipped: torch is not installed "
                     "(pip install torch, CPU wheel).")

    labels = {
        ("mlp", "fashion"): "MLP 504-288-408 b32, fashion compile_options",
        ("mlp", "keras"): "MLP 504-288-408 b32, Keras defaults",
        ("cnn", "fashion"): "CNN defaults, fashion compile_options",
        ("cnn", "keras"): "CNN defaults, Keras defaults",
        "torch": "CNN defaults, plain PyTorch loop",
    }
    rows = {}
    for key, label in labels.items():
        f = figures.get(key)
        rows[key] = Row(label, **({k: f[k] for k in ("epoch_s", "images_per_s", "peak_mib")}
                                  if f else {}))
        if f:
            rows[key].gflops = achieved_gflops(f)

    mlp, mlp_keras = figures[("mlp", "fashion")], figures[("mlp", "keras")]
    if mlp:
        # Judged on a full 60,000-image epoch, projected from images/s on a --quick run.
        full_epoch_s = FULL_EPOCH_IMAGES / mlp["images_per_s"]
        goal = f"60k epoch {full_epoch_s:.1f} s (<= {GOAL_MLP_EPOCH_S:g} s)"
        passed = full_epoch_s <= GOAL_MLP_EPOCH_S
        if mlp_keras:
            speedup = mlp["images_per_s"] / mlp_keras["images_per_s"]
            goal += f"; {speedup:.2f}x defaults (>= {GOAL_MLP_VS_DEFAULTS:g}x)"
            passed = passed and speedup >= GOAL_MLP_VS_DEFAULTS
        rows[("mlp", "fashion")].goal, rows[("mlp", "fashion")].verdict = goal, verdict(passed)
    cnn, torch_ref = figures[("cnn", "fashion")], figures["torch"]
    if cnn and torch_ref:
        ratio = cnn["images_per_s"] / torch_ref["images_per_s"]
        rows[("cnn", "fashion")].goal = f"{ratio:.2f}x PyTorch (>= {GOAL_CNN_VS_TORCH:g}x)"
        rows[("cnn", "fashion")].verdict = verdict(ratio >= GOAL_CNN_VS_TORCH)
    cnn_keras = figures[("cnn", "keras")]
    if cnn and cnn_keras:
        rows[("cnn", "keras")].goal = \
            f"fashion is {cnn['images_per_s'] / cnn_keras['images_per_s']:.2f}x this"
    for key in (("mlp", "fashion"), ("mlp", "keras"), ("cnn", "fashion"), ("cnn", "keras")):
        f = figures[key]
        if f:
            rows[key].notes.append(f"jit_compile={f['jit_compile']}, "
                                   f"steps_per_execution={f['steps_per_execution']}")
    if torch_ref:
        rows["torch"].notes.append(f"torch {torch_ref['torch']}, {torch_ref['threads']} threads")
    return list(rows.values())


def tuner_row(args, notes: list[str]) -> Row:
    f, why = run_child("tuner", args)
    row = Row("Tuner overhead per trial (RandomSearch, CNN)")
    if not f:
        notes.append(why)
        return row
    row.peak_mib = f["peak_mib"]
    row.goal = (f"{f['overhead_s']:.2f} s of a {f['trial_s']:.1f} s trial = "
                f"{100 * f['overhead_fraction']:.1f}% of fit (<= {100 * GOAL_TUNER_OVERHEAD:g}%)")
    row.verdict = verdict(f["overhead_fraction"] <= GOAL_TUNER_OVERHEAD)
    row.notes.append(f"median of {f['trials']} one-epoch trials on {f['images']:,} images, "
                     f"validation on {f['val_images']:,}")
    return row


def prediction_rows(args, notes: list[str], directory: str) -> list[Row]:
    rows = []
    for family in ("cnn", "mlp"):
        onnx_path = str(Path(directory) / f"{family}.onnx") if has_module("onnxruntime") else None
        keras_figures, why = run_child(f"predict:{family}", args, onnx_path)
        if why:
            notes.append(why)
        rows.append(prediction_row(f"{family.upper()} predict, Keras compiled function",
                                   keras_figures))
        flops = keras_figures["flops_per_image"] if keras_figures else None
        if onnx_path is None:
            notes.append("ONNX Runtime skipped: onnxruntime is not installed.")
        elif keras_figures and Path(onnx_path).is_file():
            onnx_figures, why = run_child("onnx", args, onnx_path)
            if why:
                notes.append(why)
            rows.append(prediction_row(
                f"{family.upper()} predict, ONNX Runtime ({keras_figures['onnx']})",
                onnx_figures, flops))
        else:
            notes.append(f"ONNX Runtime skipped for the {family.upper()}: export failed.")
    return rows


def prediction_row(label: str, f: dict | None, flops_per_image: int | None = None) -> Row:
    row = Row(label)
    if not f:
        return row
    row.p50_ms, row.p99_ms = f["p50_ms"], f["p99_ms"]
    row.images_per_s, row.peak_mib = f["images_per_s"], f["peak_mib"]
    row.gflops = achieved_gflops(f, flops_per_image)
    row.goal = (f"p50 <= {GOAL_P50_MS:g} ms; {PREDICT_IMAGES:,} images at "
                f">= {GOAL_BATCH_IMAGES_PER_S:,}/s")
    row.verdict = verdict(f["p50_ms"] <= GOAL_P50_MS
                          and f["images_per_s"] >= GOAL_BATCH_IMAGES_PER_S)
    return row


def machine_header(args) -> list[str]:
    import importlib.metadata

    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").open()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    cfg = QUICK if args.quick else FULL
    load = os.getloadavg()[0]
    busy = (" - BUSY: other work is running, timings are inflated"
            if load > 0.5 else "")
    return [
        f"command: {' '.join(['python', *sys.argv])}",
        f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores usable, "
        f"load average at start {load:.2f}{busy}",
        f"versions: Python {platform.python_version()}, TensorFlow {version('tensorflow')}, "
        f"Keras {version('keras')}, KerasTuner {version('keras-tuner')}, "
        f"torch {version('torch')}, onnxruntime {version('onnxruntime')}",
        f"training: {cfg['images'] or FULL_EPOCH_IMAGES:,} images, {cfg['epochs']} epochs, "
        "median of the epochs after the first; latency: median of "
        f"{cfg['latency_calls']} single-image calls",
    ]


def cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def gflops_cell(gflops: float | None, peak: float | None) -> str:
    if gflops is None:
        return "-"
    return f"{gflops:,.1f}" + (f" ({100 * gflops / peak:.0f}%)" if peak else "")


def format_table(rows: list[Row], markdown: bool, peak: float | None) -> str:
    header = ["Measurement", "s/epoch", "images/s", "p50 ms", "p99 ms", "peak MiB",
              "GFLOP/s (% peak)", "Goal", "Result", "Notes"]
    body = [[r.what, cell(r.epoch_s, 2), cell(r.images_per_s, 0), cell(r.p50_ms, 3),
             cell(r.p99_ms, 3), cell(r.peak_mib, 0), gflops_cell(r.gflops, peak), r.goal,
             r.verdict, "; ".join(r.notes)]
            for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---", *["---:"] * 6, "---", "---", "---"]) + "|"]
        return "\n".join(lines + ["| " + " | ".join(line) + " |" for line in body])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True))
                     .rstrip() for line in [header, *body])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="6,400 images and 2 epochs: checks the script in a few minutes")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--onnx-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(RESULT_PREFIX + json.dumps(run_measurement(args)), flush=True)
        return

    header = machine_header(args)
    start = time.monotonic()
    notes: list[str] = []
    peak = peak_row(notes)
    with tempfile.TemporaryDirectory() as directory:
        rows = [peak, *training_rows(args, notes), tuner_row(args, notes),
                *prediction_rows(args, notes, directory)]
    notes.append(f"benchmark took {time.monotonic() - start:.0f} s")
    if args.quick:
        notes.append("--quick: figures check the script, they are not reportable")

    bullet = "- " if args.markdown else ""
    print("\n".join(bullet + line for line in header))
    print()
    print(format_table(rows, args.markdown, peak.gflops))
    print()
    print("\n".join(bullet + note for note in notes))


if __name__ == "__main__":
    main()
