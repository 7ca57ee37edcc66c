"""Runs side by side: which is better, and what differed between them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fashion.evaluation import figures
from fashion.evaluation.report_page import PageFigure, Section, Table, format_value, render_html
from fashion.runs.rundir import RunDir
from fashion.storage import files
from fashion.tuning.trial_records import format_duration

# Settings that say where a run's files are rather than how it ran.
NOT_SETTINGS = ("data_dir",)


def read_run(run_dir: Path) -> dict:
    """Return what a comparison needs of one run: settings, versions, metrics and curves.

    Raises:
        RunDirError: the folder is not a finished run (naming the missing file).
    """
    run = RunDir(run_dir)
    record = run.record()
    return {"name": str(run.path), "config": record["config"],
            "versions": record.get("versions", {}), "metrics": run.metrics(),
            "history": run.history()}


def compare_runs(runs: list[dict]) -> dict:
    """Return the comparison: one row of results per run, best test accuracy first, and the
    settings that differ between the runs (name -> one value per run, in the rows' order)."""
    rows = sorted((_result_row(run) for run in runs), key=lambda r: -r["test_accuracy"])
    by_name = {run["name"]: run for run in runs}
    ordered = [by_name[row["run"]] for row in rows]
    names = sorted({k for run in runs for k in run["config"]} - set(NOT_SETTINGS))
    differences = {name: [run["config"].get(name) for run in ordered] for name in names
                   if len({repr(run["config"].get(name)) for run in ordered}) > 1}
    backends = [run["versions"].get("keras_backend") for run in ordered]
    if len(set(backends)) > 1:
        differences["keras backend"] = backends
    return {"runs": rows, "differences": differences}


def _result_row(run: dict) -> dict:
    m = run["metrics"]
    return {"run": run["name"], "split": m["split"], "test_images": m["test"]["n_images"],
            "backend": run["versions"].get("keras_backend"),
            "parameters": m["parameters"], "tuning_s": m["tuning_seconds"],
            "training_s": m["training_seconds"], "epochs": m["epochs_trained"],
            # A dash where the final training learnt from the validation images.
            "val_accuracy": (None if m.get("validation_trained_on")
                             else m["validation"]["accuracy"]),
            "test_accuracy": m["test"]["accuracy"],
            "test_macro_f1": m["test"]["macro_f1"]}


COLUMNS = {"run": "run", "split": "split", "backend": "backend", "parameters": "parameters",
           "tuning_s": "tuning", "training_s": "training", "epochs": "epochs",
           "val_accuracy": "val accuracy", "test_accuracy": "test accuracy",
           "test_macro_f1": "test macro F1"}


def verdict(comparison: dict) -> str:
    """One line: which run is best on the test split, and by how much."""
    best, *others = comparison["runs"]
    line = f"Best: {best['run']}, test accuracy {best['test_accuracy']:.4f}"
    if others:
        line += (f", {best['test_accuracy'] - others[0]['test_accuracy']:+.4f} over the next "
                 f"({others[0]['run']})")
    return line + "."


def format_comparison(comparison: dict) -> str:
    """Return the comparison as text: the verdict, the results table best first, then what
    differed."""
    header = list(COLUMNS.values())
    rows = [[_cell(key, row[key]) for key in COLUMNS] for row in comparison["runs"]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [verdict(comparison), ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in [header, *rows]]
    if {row["split"] for row in comparison["runs"]} != {comparison["runs"][0]["split"]}:
        lines.append("note: the runs were tested on different splits; their test accuracies "
                     "are not measured on the same images")
    lines.append("")
    if not comparison["differences"]:
        lines.append("settings: the same in every run")
    else:
        lines.append("settings that differ (in the order above):")
        lines += [f"  {name}: " + " | ".join(format_value(v) for v in values)
                  for name, values in comparison["differences"].items()]
    return "\n".join(lines)


def _cell(key: str, value) -> str:
    return format_duration(value) if key.endswith("_s") else format_value(value)


def write_comparison_page(runs: list[dict], comparison: dict, path: Path) -> Path:
    """Write one self-contained HTML page: the table, what differed, and every run's curves."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as folder:
        drawn = figures.plot_runs_side_by_side(
            [run["name"] for run in runs], [run["history"] for run in runs],
            [run["metrics"]["tuning_seconds"] for run in runs],
            [run["metrics"]["training_seconds"] for run in runs], Path(folder) / "runs.png")
        differences = comparison["differences"]
        sections = [
            Section("Results, best test accuracy first", [verdict(comparison),
                Table(list(COLUMNS.values()), [[_cell(k, row[k]) for k in COLUMNS]
                                               for row in comparison["runs"]], highlight=0)]),
            Section("What differed", [
                Table(["setting", *(row["run"] for row in comparison["runs"])],
                      [[name, *values] for name, values in differences.items()])
                if differences else "Every setting was the same."]),
            Section("Curves", [PageFigure(drawn.name, "Validation accuracy of each run's final "
                                      "training per epoch (left), and against the run's wall "
                                      "time (right): the search first, then the training's "
                                      "epochs, taken as equally long.")]),
        ]
        page = render_html("Fashion-MNIST runs compared", sections, Path(folder))
    files.write_atomic(path, page)
    return path
