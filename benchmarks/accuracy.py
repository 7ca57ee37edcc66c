"""Accuracy of fashion's models on this machine, each measured in this run (issue 5).

Runs, one after another on the same machine:

- the notebook's MLP with its published best hyperparameters (504-288-408 ReLU units, Adam at
  1e-4, batch 32: `fashion.spaces.mlp.NOTEBOOK_BEST`), trained as the notebook's final
  retraining did (the seed preset's): 20 epochs, keeping the weights of the epoch with the best
  validation accuracy, no tuning;
- `fashion run` with the default preset;
- `fashion run --preset best`;

all three on the standard split (validation carved from the 60,000 training images, the
10,000 test images untouched), and prints one table: parameters, tuning and training time,
the whole run's wall time, validation accuracy, and test accuracy on the standard 10,000 test
images and on the seed split's 4,000 (the notebook's; a subset of the 10,000 no run has seen).

Run from the repository root, on an otherwise idle machine (about 80 minutes on 2 cores):

    PYTHONPATH=src python -m benchmarks.accuracy --out bench-accuracy --markdown

Each run's folder stays under --out (model, metrics, report); the table is also saved there as
accuracy.json. `--only best` runs one row; `--reevaluate` scores the saved models again without
training (the timings stay those of the run that trained them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROWS = {
    "notebook": "Notebook MLP, published best hyperparameters",
    "default": "fashion run (default preset)",
    "best": "fashion run --preset best",
}
RUN_ORDER = ["best", "default", "notebook"]


def train_notebook_mlp(run_dir: Path, limit: int | None) -> None:
    """Train the notebook's best MLP on the standard split and save it like a run."""
    from fashion.evaluation.evaluate import evaluate_model
    from fashion.inference.model_files import save_model
    from fashion.runs import rundir
    from fashion.spaces.mlp import notebook_best_hyperparameters
    from fashion.storage import files
    from fashion.storage.dataset import load_splits
    from fashion.training.config import config_from_preset
    from fashion.training.train import train_best

    config = config_from_preset("seed", split="standard", limit=limit)
    splits = load_splits(config)
    started = time.monotonic()
    model, history = train_best(notebook_best_hyperparameters(), splits, config, verbose=2)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, run_dir / rundir.MODEL)
    files.write_json(run_dir / rundir.METRICS, {
        "parameters": int(model.count_params()),
        "tuning_seconds": 0.0,
        "training_seconds": round(time.monotonic() - started, 1),
        "epochs_trained": len(history["loss"]),
        "validation": evaluate_model(model, splits.x_val, splits.y_val, "validation"),
    })


def run_row(name: str, run_dir: Path, limit: int | None, budget: float | None = None) -> float:
    """Produce one row's run folder in a fresh process; return its wall time in seconds."""
    if name == "notebook":
        command = [sys.executable, "-m", "benchmarks.accuracy", "--train-notebook-mlp",
                   str(run_dir)]
    else:
        command = [sys.executable, "-m", "fashion.cli", "run", "--preset", name, "--split",
                   "standard", "--out", str(run_dir), "--overwrite"]
    if limit:
        command += ["--limit", str(limit)]
    if budget and name != "notebook":
        command += ["--budget", f"{budget:g}"]
    print(f"[accuracy] {name}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL if name != "best" else None)
    return time.monotonic() - started


def measure_test_accuracies(model_path: Path, limit: int | None) -> dict[str, float]:
    """Accuracy of a saved model on the standard and the seed split's test images.

    A flip-averaged model (the vgg space's) is also scored without the averaging, its inner
    network alone, to show what the test-time flip adds.
    """
    import keras

    from fashion.evaluation.evaluate import evaluate_model
    from fashion.inference.model_files import load_model
    from fashion.storage.dataset import load_fashion_mnist, split_data

    arrays, _ = load_fashion_mnist(os.environ.get("FASHION_MNIST_DIR"))
    model = load_model(model_path)
    models = {"": model}
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if inner:
        models["_without_flip"] = inner[0]
    accuracies = {}
    for split in ("standard", "seed"):
        test = split_data(arrays, split, limit=limit)
        for suffix, scored in models.items():
            accuracies[split + suffix] = evaluate_model(scored, test.x_test, test.y_test,
                                                        "test")["accuracy"]
    return accuracies


def measure(names: list[str], out: Path, limit: int | None,
            budget: float | None = None) -> list[dict]:
    """Run each named row into its folder under `out` and collect its figures."""
    rows = []
    # The best preset first: the row the issue is judged on finishes earliest.
    for name in sorted(names, key=RUN_ORDER.index):
        run_dir = out / name
        wall_seconds = run_row(name, run_dir, limit, budget)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        record = run_dir / "config.json"  # the notebook row is no `fashion run`: none
        plan = json.loads(record.read_text()).get("plan") if record.exists() else None
        rows.append({
            "name": name,
            "description": ROWS[name],
            "parameters": metrics["parameters"],
            "tuning_s": metrics["tuning_seconds"],
            "training_s": metrics["training_seconds"],
            "wall_s": round(wall_seconds, 1),
            "val_accuracy": metrics["validation"]["accuracy"],
            "val_trained_on": metrics.get("validation_trained_on", False),
            "test_accuracy": measure_test_accuracies(run_dir / "model.keras", limit),
            "plan": plan and {k: plan[k] for k in ("budget_minutes", "device", "network",
                                                   "precision", "epochs")},
        })
    return sorted(rows, key=lambda row: list(ROWS).index(row["name"]))


def reevaluate(out: Path, limit: int | None) -> list[dict]:
    """Score the models of an earlier run of this script again, keeping its timings."""
    rows = json.loads((out / "accuracy.json").read_text())["rows"]
    for row in rows:
        row["test_accuracy"] = measure_test_accuracies(out / row["name"] / "model.keras", limit)
    return rows


def flip_notes(rows: list[dict]) -> str:
    """One line per flip-averaged model: its accuracy without the averaging."""
    return "\n".join(
        f"{row['description']}: without flip averaging, test accuracy "
        f"{row['test_accuracy']['standard_without_flip']:.4f} (standard), "
        f"{row['test_accuracy']['seed_without_flip']:.4f} (seed split)"
        for row in rows if "standard_without_flip" in row["test_accuracy"])


def format_table(rows: list[dict], markdown: bool) -> str:
    """The rows as aligned text, or as a Markdown table for docs/benchmarks.md."""
    header = ["Model", "Parameters", "Tuning", "Training", "Wall time", "Val acc",
              "Test acc, standard (10,000)", "Test acc, seed split (4,000)"]
    lines = [[row["description"], f"{row['parameters']:,}", _minutes(row["tuning_s"]),
              _minutes(row["training_s"]), _minutes(row["wall_s"]),
              f"{row['val_accuracy']:.4f}" + (" (trained on)" if row["val_trained_on"] else ""),
              f"{row['test_accuracy']['standard']:.4f}",
              f"{row['test_accuracy']['seed']:.4f}"] for row in rows]
    if markdown:
        return "\n".join("| " + " | ".join(cells) + " |"
                         for cells in [header, ["---"] * len(header), *lines])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
                     for cells in [header, *lines])


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def machine() -> str:
    """The CPU, its core count and the OS: the context every timing needs."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-accuracy"),
                        help="folder for the runs and accuracy.json")
    parser.add_argument("--only", choices=list(ROWS), action="append", help="run only these rows")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--limit", type=int, help="images per split, for a quick check of the "
                        "script itself (its figures mean nothing)")
    parser.add_argument("--budget", type=float, metavar="MINUTES", help="the default and best "
                        "rows' --budget (default: their presets', 15 and 60 minutes)")
    parser.add_argument("--reevaluate", action="store_true", help="score the models already "
                        "in --out again (timings kept from its accuracy.json), training nothing")
    parser.add_argument("--train-notebook-mlp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_notebook_mlp:
        train_notebook_mlp(args.train_notebook_mlp, args.limit)
        return 0

    if args.reevaluate:
        record = json.loads((args.out / "accuracy.json").read_text())
        record["rows"] = reevaluate(args.out, args.limit)
        summary = f"machine: {record['machine']}\nstarted {record['started']}, models rescored"
    else:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        load_at_start = os.getloadavg()[0]
        rows = measure(args.only or list(ROWS), args.out, args.limit, args.budget)
        record = {"machine": machine(), "started": started, "limit": args.limit, "rows": rows}
        summary = (f"machine: {machine()}\nstarted {started}, load average at start "
                   f"{load_at_start:.2f}, at end {os.getloadavg()[0]:.2f}")
    (args.out / "accuracy.json").write_text(json.dumps(record, indent=2))
    print(f"{summary}\n\n{format_table(record['rows'], args.markdown)}\n\n"
          f"{flip_notes(record['rows'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
