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

    PYTHONPATH=src python -m benchmarks.speed             # full size; < 15 minutes on 2 cores
    PYTHONPATH=src python -m benchmarks.speed --quick     # 6,400 images, 2 epochs: a check
    PYTHONPATH=src python -m benchmarks.speed --markdown  # the table as Markdown

Timings are only worth reporting on an otherwise idle machine: the header prints the load
average at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.speed_measurements import FULL, FULL_EPOCH_IMAGES, QUICK, RESULT_PREFIX
from benchmarks.speed_prediction import PREDICT_IMAGES

# Each measurement runs alone in a child process: `python -m` this module.
MEASUREMENTS = "benchmarks.speed_measurements"

CHILD_TIMEOUT_S = 600

# Goals of issue 7.
GOAL_MLP_EPOCH_S = 4.0
GOAL_MLP_VS_DEFAULTS = 2.0
GOAL_CNN_VS_TORCH = 1.5
GOAL_P50_MS = 2.0
GOAL_BATCH_IMAGES_PER_S = 20_000
GOAL_TUNER_OVERHEAD = 0.05


# The table: run each measurement in a subprocess, judge the goals, print the rows.

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
    command = [sys.executable, "-m", MEASUREMENTS, name] + (["--quick"] if quick else [])
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
    for family in ("cnn", "mlp", "shipped"):
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
    args = parser.parse_args(argv)

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
