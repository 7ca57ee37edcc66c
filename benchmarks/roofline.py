"""The training step against this CPU's limit: achieved FLOP/s, the peak, and where time goes.

    PYTHONPATH=src python -m benchmarks.roofline                  # about 5 minutes on 2 cores
    PYTHONPATH=src python -m benchmarks.roofline --networks vgg wrn-16-4 --seconds 5 --json

Prints, all measured in this one run so that the ratios are fair:

1. the peak: the best of a few large square matmuls (`keras.ops.matmul` in a compiled function
   of the active backend), FLOP/s = 2 n^3 / t, in float32 and, where the CPU has bfloat16
   instructions (`detect_device().bfloat16`), in bfloat16;
2. for each network of the ladder (`fashion.spaces.networks.NETWORKS`) and each precision a
   plan considers: training images/s from the plan's own measurement
   (`fashion.runs.plan.measure_training_speed`, default preset), times the FLOPs per image of
   the model the space builds (`count_multiply_adds`), against the peak of that precision;
3. a profile of one epoch of the vgg network in the precision the plan picks
   (`benchmarks.profile_epoch` says how each part is measured), scaled to 54,000 images;
4. a verdict on what bounds the step, computed from the figures above.

Run it on an otherwise idle machine: the header prints the load average at the start.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import keras

from benchmarks.profile_epoch import EPOCH_IMAGES, PARTS, build_space_model, profile_epoch
from fashion.runs.plan import MEASURE_SECONDS, make_plan, measure_training_speed
from fashion.spaces.networks import NETWORKS
from fashion.training.config import config_from_preset
from fashion.training.device import describe, detect_device

DEFAULT_NETWORKS = ("vgg", "vgg-wide", "vgg-2x")  # the wrn ones take minutes each on a CPU
# Big enough that a 2-core CPU spends ~0.1-1 s a product, so call overhead does not count.
MATMUL_SIZE = 3072
# A training step is 3 products of a forward pass's size: forward, the gradient with respect
# to each layer's input and the one with respect to its weights.
TRAINING_PASSES = 3
FLOPS_NOTE = (f"FLOPs per image = 2 x {TRAINING_PASSES} x the multiply-adds of every Conv2D "
              "(H_out*W_out*k*k*C_in*C_out) and Dense (inputs*units) layer of the model the "
              "space builds; batch norm, activations, pooling, loss and optimizer are not "
              "counted, and neither is the first convolution's unneeded input gradient")
PEAK_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def count_multiply_adds(model) -> dict[str, int]:
    """Multiply-adds of one example's forward pass: {"conv": ..., "dense": ...}.

    Conv2D: H_out * W_out * (k_h * k_w * C_in/groups * C_out, the kernel's size); Dense: the
    kernel's size (inputs * units) at each position it applies to. Nested models are walked.
    """
    counts = {"conv": 0, "dense": 0}
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            height, width = layer.output.shape[1:3]
            counts["conv"] += height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(layer.output.shape[1:-1])
            counts["dense"] += positions * math.prod(layer.kernel.shape)
    return counts


def _leaf_layers(model):
    for layer in model.layers:
        yield from _leaf_layers(layer) if hasattr(layer, "layers") else [layer]


def training_flops(model) -> int:
    """FLOPs of one image's training step (`FLOPS_NOTE` says how they are counted)."""
    return 2 * TRAINING_PASSES * sum(count_multiply_adds(model).values())


def compiled(function):
    """`function` compiled by the active backend: a tf.function, a jax.jit, or as it is."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def measure_peak(dtype: str, size: int = MATMUL_SIZE, repeats: int = 5,
                 min_seconds: float = 1.0) -> float:
    """FLOP/s of the fastest of at least `repeats` compiled `size`-square matmuls in `dtype`,
    repeated for at least `min_seconds` (the best of more tries is steadier on a busy CPU)."""
    a = keras.random.normal((size, size), dtype=dtype, seed=1)
    b = keras.random.normal((size, size), dtype=dtype, seed=2)
    product = compiled(keras.ops.matmul)
    _wait_for(product(a, b))  # traces
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        start = time.perf_counter()
        _wait_for(product(a, b))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def _wait_for(result) -> None:
    # Reading one element waits for an asynchronous backend (JAX); NumPy has no bfloat16.
    keras.ops.convert_to_numpy(keras.ops.cast(result[0, 0], "float32"))


def threads_text() -> str:
    cores = detect_device().cpu_cores
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        intra = tf.config.threading.get_intra_op_parallelism_threads()
        if intra:
            return f"{intra} intra-op threads on {cores} cores"
    return f"the backend's default threads, one per core: {cores}"


def measure_networks(config, networks, precisions, seconds: float) -> list[dict]:
    """Training images/s and FLOPs per image of each network in each precision."""
    rows = []
    for network in networks:
        flops = training_flops(build_space_model(config, network, "float32")[2])
        for precision in precisions:
            rate = measure_training_speed(config, network, precision, False, seconds=seconds)
            rows.append({"network": network, "precision": precision, "images_per_s": rate,
                         "flops_per_image": flops, "flops_per_s": rate * flops})
    return rows


def plan_precision(config, device, rows, seconds: float) -> str:
    """The precision a default-preset plan picks for vgg, from the rates measured above."""
    rates = {(row["network"], row["precision"]): row["images_per_s"] for row in rows}

    def measure(network, precision, augment_in_graph):
        if (network, precision) not in rates:
            rates[network, precision] = measure_training_speed(
                config, network, precision, augment_in_graph, seconds=seconds)
        return rates[network, precision]

    return make_plan(config.replace(network="vgg"), device, measure).precision


def verdict(row: dict, peak: float, profile: dict, conv_flops_per_s: float) -> str:
    """One paragraph on what bounds the step, from the figures: the largest part of the epoch
    and how near the peak the convolutions run."""
    parts, total = profile["parts"], profile["fit_epoch"]
    groups = {"convolutions": parts[PARTS[0]] + parts[PARTS[1]],
              "other layers": parts[PARTS[2]] + parts[PARTS[3]],
              "optimizer": parts[PARTS[4]], "input": parts[PARTS[5]] + parts[PARTS[6]],
              "overhead": parts[PARTS[7]]}
    shares = {name: value / total for name, value in groups.items()}
    conv_ratio = conv_flops_per_s / peak
    text = (f"The {row['network']} step in {row['precision']} reaches "
            f"{row['flops_per_s'] / peak:.0%} of this CPU's measured "
            f"{PEAK_DTYPES[row['precision']]} peak. Of a {total:.0f}-s epoch, convolutions "
            f"take {shares['convolutions']:.0%} (themselves at {conv_ratio:.0%} of peak), the "
            f"other layers {shares['other layers']:.0%}, the optimizer "
            f"{shares['optimizer']:.0%}, host augmentation and input {shares['input']:.0%} and "
            f"Python/framework overhead {shares['overhead']:.0%}. ")
    if max(conv_ratio, row["flops_per_s"] / peak) > 1:
        return text + ("These ratios above 100% mean the peak was measured low, on a busy CPU: "
                       "rerun on an idle machine before reading a bound from them.")
    if min(parts.values()) < 0:
        text += ("A part below zero means the experiments disagree by more than it (a busy "
                 "machine, or input overlapping training); more --batches steady them. ")
    largest = max(shares, key=shares.get)
    if largest == "convolutions" and conv_ratio >= 0.5:
        return text + ("So the step is compute-bound where it computes: its largest part runs "
                       "near the peak, and the slack is in the other "
                       f"{1 - shares['convolutions']:.0%}, which does little arithmetic.")
    return text + BOUNDS["kernels" if largest == "convolutions" else largest]


BOUNDS = {
    "kernels": "So the step is bound by how efficiently the convolutions run, not by the peak: "
               "28x28 images and few channels make small matrix products, where data layout, "
               "oneDNN options or a larger batch have slack.",
    "other layers": "So the step is bound by the layers around the convolutions (batch norm, "
                    "activations, pooling, dropout): memory traffic, not arithmetic; fusing them "
                    "is where the slack is.",
    "optimizer": "So the step is bound by the optimizer update: a fused or less frequent update "
                 "is where the slack is.",
    "input": "So the step is input-bound: augmentation and batching on the host are where the "
             "slack is (fused or in-graph augmentation, more workers).",
    "overhead": "So the step is bound by Python and framework overhead: more steps per "
                "execution or larger batches are where the slack is.",
}


def measure_all(args) -> dict:
    """Every figure the benchmark prints, as one JSON-ready dict."""
    config, device = config_from_preset("default"), detect_device()
    precisions = ["float32", *(["mixed_bfloat16"] if device.bfloat16 else [])]
    figures = {"device": describe(device.to_dict()), "threads": threads_text(),
               "load_average": os.getloadavg()[0], "matmul_size": args.matmul_size,
               "peaks": {p: measure_peak(PEAK_DTYPES[p], args.matmul_size) for p in precisions},
               "flops_note": FLOPS_NOTE}
    rows = measure_networks(config, args.networks, precisions, args.seconds)
    precision = plan_precision(config, device, rows, args.seconds)
    if "vgg" not in args.networks:  # the verdict's row: the profiled network
        rows += measure_networks(config, ["vgg"], [precision], args.seconds)
    for row in rows:
        row["peak_ratio"] = row["flops_per_s"] / figures["peaks"][row["precision"]]
    profile = profile_epoch(config, "vgg", precision, args.batches)
    model = build_space_model(config, "vgg", precision)[2]
    conv_flops = EPOCH_IMAGES * 2 * TRAINING_PASSES * count_multiply_adds(model)["conv"]
    conv_flops_per_s = conv_flops / (profile["parts"][PARTS[0]] + profile["parts"][PARTS[1]])
    row = next(r for r in rows if (r["network"], r["precision"]) == ("vgg", precision))
    figures.update(networks=rows, profile=profile, conv_flops_per_s=conv_flops_per_s,
                   verdict=verdict(row, figures["peaks"][precision], profile, conv_flops_per_s))
    return figures


def print_figures(figures: dict) -> None:
    print(f"Roofline on {figures['device']}; {figures['threads']}; load average "
          f"{figures['load_average']:.1f} at the start")
    print(f"\nPeak: best of 5 {figures['matmul_size']}-square keras.ops.matmul, compiled")
    for precision, peak in figures["peaks"].items():
        print(f"  {PEAK_DTYPES[precision]:<9} {peak / 1e9:8.1f} GFLOP/s")
    print(f"\nTraining step ({figures['flops_note']}):")
    print(f"  {'network':<10}{'precision':<16}{'MFLOP/image':>12}{'images/s':>10}"
          f"{'GFLOP/s':>10}{'% of peak':>11}")
    for row in figures["networks"]:
        print(f"  {row['network']:<10}{row['precision']:<16}{row['flops_per_image'] / 1e6:>12.1f}"
              f"{row['images_per_s']:>10,.0f}{row['flops_per_s'] / 1e9:>10.1f}"
              f"{100 * row['peak_ratio']:>10.1f}%")
    profile = figures["profile"]
    print(f"\nOne epoch of {profile['network']} in {profile['precision']} (the plan's pick), "
          f"batch {profile['batch_size']}: {profile['measured_images']:,} images measured, "
          f"scaled to {EPOCH_IMAGES:,} (benchmarks/profile_epoch.py says how each part is "
          "measured)")
    for part, seconds in [*profile["parts"].items(), ("real fit epoch", profile["fit_epoch"])]:
        print(f"  {part:<28}{seconds:>8.1f} s{100 * seconds / profile['fit_epoch']:>6.0f}%")
    print(f"  (the fit epoch pays {profile['fit_epoch_once']:.2f} s of it once, before its "
          f"first batch and after its last; convolutions alone run at "
          f"{figures['conv_flops_per_s'] / 1e9:.1f} GFLOP/s)")
    print(f"\nVerdict: {figures['verdict']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS),
                        default=list(DEFAULT_NETWORKS))
    parser.add_argument("--seconds", type=float, default=MEASURE_SECONDS,
                        help="seconds each training speed is measured for, after compiling")
    parser.add_argument("--batches", type=int, default=40,
                        help="batches the epoch profile measures (scaled to a full epoch)")
    parser.add_argument("--matmul-size", type=int, default=MATMUL_SIZE)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure_all(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_figures(figures)


if __name__ == "__main__":
    main()
