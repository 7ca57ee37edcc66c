"""Build a run directory's report (figures, report.html, report.md) from its saved files alone."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fashion import report, rundir
from fashion.config import RunConfig, load_config
from fashion.evaluate import most_confused_pairs, predict_probabilities, worst_misclassified
from fashion.report_page import Figure, Section, Table, render_html, render_markdown
from fashion.trial_records import (
    EPOCHS_FEATURE,
    finished,
    hyperparameter_importance,
    load_trials,
    tuned_names,
)

# How many confident mistakes the grid shows: three rows of eight stay legible.
N_WORST = 24
CAPTIONS = {
    "curves": "Loss and accuracy per epoch of the final training; the dashed line marks the "
              "epoch whose weights were kept.",
    "confusion": "Test confusion matrix: counts (left) and share of each true class (right). "
                 "Off-diagonal cells are the mistakes.",
    "f1": "F1 per class on the test split, worst first, with precision (P) and recall (R).",
    "worst": "The test images the model got wrong with the most confidence.",
    "samples": "Training images of every class.",
    "tuning": "{objective} of every finished trial in the order it started, and the best so far.",
    "importance": "How much of the trials' {objective} each hyperparameter explains: a random "
                  "forest fitted to the finished trials, as Optuna ranks importance. A rough "
                  "guide with few trials; a conditional hyperparameter (one that exists only for "
                  "some values of another, like the third block's filters) also stands for its "
                  "parent's value.",
    "effects": "{objective} against each tuned hyperparameter, most important first.",
}


@dataclass(frozen=True)
class RunFiles:
    """What a finished run directory holds, read back."""

    run_dir: Path
    record: dict  # config.json: settings, command, versions, data checksums
    config: RunConfig
    best_hyperparameters: dict
    metrics: dict
    history: dict[str, list[float]]
    trials: list[dict]


def read_run_files(run_dir: Path) -> RunFiles:
    """Read every saved file a report needs, naming the first that is missing or corrupt."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise rundir.RunDirError(f"{run_dir} is not a directory; pass a run directory made by "
                                 "`fashion run`")
    record = rundir.read_json(run_dir / rundir.CONFIG)
    return RunFiles(
        run_dir=run_dir, record=record, config=load_config(run_dir / rundir.CONFIG),
        best_hyperparameters=rundir.read_json(run_dir / rundir.BEST_HYPERPARAMETERS),
        metrics=rundir.read_json(run_dir / rundir.METRICS),
        history=rundir.read_history(run_dir / rundir.HISTORY),
        trials=load_trials(run_dir))


def write_report(run_dir: Path, model=None, splits=None, data_dir: str | None = None) -> Path:
    """Write figures/, report.html and report.md into a finished run directory; return the HTML.

    `model` and `splits` are loaded from the run (model.keras, the data named by config.json)
    when not given. Everything is built in a hidden folder first and moved into place at the
    end, so a failure leaves the previous report untouched.
    """
    files = read_run_files(run_dir)
    if model is None:
        model = rundir.load_model(files.run_dir / rundir.MODEL)
    if splits is None:
        splits = load_splits(files.config, data_dir)
    probabilities = predict_probabilities(model, splits.x_test)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=files.run_dir))
    try:
        figures = make_figures(files, splits, probabilities, staging / rundir.FIGURES)
        title = f"Fashion-MNIST run {files.run_dir.resolve().name}"
        sections = build_sections(files, figures)
        (staging / rundir.REPORT_HTML).write_text(
            render_html(title, sections, staging / rundir.FIGURES))
        (staging / rundir.REPORT_MD).write_text(render_markdown(title, sections, rundir.FIGURES))
        publish(staging, files.run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files.run_dir / rundir.REPORT_HTML


def load_splits(config: RunConfig, data_dir: str | None = None):
    """The run's splits again, from its settings: same split, seed and limit, so the same images."""
    from fashion.data import load_fashion_mnist, split_data

    arrays, _ = load_fashion_mnist(data_dir or config.data_dir)
    return split_data(arrays, config.split, seed=config.seed, limit=config.limit)


def publish(staging: Path, run_dir: Path) -> None:
    """Move the staged figures and pages over the old ones, figures first so pages never dangle."""
    figures, old = run_dir / rundir.FIGURES, staging / "old-figures"
    if figures.exists():
        os.replace(figures, old)
    os.replace(staging / rundir.FIGURES, figures)
    for name in (rundir.REPORT_MD, rundir.REPORT_HTML):
        os.replace(staging / name, run_dir / name)


def make_figures(files: RunFiles, splits, probabilities, folder: Path) -> dict[str, Figure]:
    """Draw every figure of the report into `folder`; return them by topic, captioned."""
    test, config, trials = files.metrics["test"], files.config, files.trials
    objective, direction = config.objective, config.objective_direction
    importance = hyperparameter_importance(trials, seed=config.seed)
    names = [n for n in importance if n != EPOCHS_FEATURE] or tuned_names(finished(trials))
    worst = worst_misclassified(splits.y_test, probabilities, N_WORST)
    paths = {
        "curves": report.plot_training_curves(files.history, config.final_patience,
                                              folder / "training_curves.png",
                                              config.final_monitor),
        "confusion": report.plot_confusion_matrices(test["confusion_matrix"],
                                                    folder / "confusion_matrix.png"),
        "f1": report.plot_per_class_f1(test["per_class"], test["macro_f1"],
                                       folder / "per_class_f1.png"),
        "worst": report.plot_worst_misclassified(splits.x_test, splits.y_test, probabilities,
                                                 worst, folder / "worst_misclassified.png"),
        "samples": report.plot_samples(splits.x_train, splits.y_train, folder / "samples.png"),
        "tuning": report.plot_tuning_history(trials, objective, direction,
                                             folder / "tuning_history.png"),
        "importance": report.plot_hyperparameter_importance(
            importance, len(finished(trials)), folder / "hyperparameter_importance.png"),
        "effects": report.plot_hyperparameter_effects(trials, names, objective,
                                                      folder / "hyperparameter_effects.png"),
    }
    return {key: Figure(path.name, CAPTIONS[key].format(objective=objective))
            for key, path in paths.items()}


def build_sections(files: RunFiles, figures: dict[str, Figure]) -> list[Section]:
    """The report's content, in the order a reader asks: how good, where it fails, why."""
    return [
        Section("How good", [summary_text(files), metrics_table(files.metrics)]),
        Section("Where it fails", [
            "The classes the model mixes up most on the test split:",
            confusion_bullets(files.metrics["test"]),
            figures["confusion"], figures["f1"], per_class_table(files.metrics["test"]),
            figures["worst"]]),
        Section("Training", [figures["curves"]]),
        Section("What tuning found", [
            tuning_text(files), figures["tuning"], figures["importance"], figures["effects"],
            "Best hyperparameters:",
            Table(["hyperparameter", "value"], sorted(files.best_hyperparameters.items())),
            "Every trial (the best highlighted):", trials_table(files)]),
        Section("Data", [data_text(files), figures["samples"]]),
        Section("Configuration", configuration_blocks(files.record)),
    ]


def summary_text(files: RunFiles) -> str:
    m, config = files.metrics, files.config
    test = m["test"]
    kept, _ = report.kept_epoch(files.history, config.final_patience, config.final_monitor)
    return (f"On the {test['n_images']:,} test images of the `{m['split']}` split the model is "
            f"right {test['accuracy']:.2%} of the time (macro F1 {test['macro_f1']:.4f}); the "
            f"right class is among its top two guesses {test['top2_accuracy']:.2%} of the time. "
            f"It is a {config.space.upper()} of {m['parameters']:,} parameters, trained "
            f"{m['epochs_trained']} epochs in {m['training_seconds']:.0f} s (the weights of epoch "
            f"{kept} kept), after a {m['tuning_seconds']:.0f} s {config.tuner} search.")


def metrics_table(metrics: dict) -> Table:
    names = ["loss", "accuracy", "top2_accuracy", "macro_precision", "macro_recall", "macro_f1"]
    rows = [[part["split"], part["n_images"], *(part[n] for n in names)]
            for part in (metrics["validation"], metrics["test"])]
    return Table(["split", "images", "loss", "accuracy", "top-2 accuracy", "macro precision",
                  "macro recall", "macro F1"], rows)


def confusion_bullets(test: dict) -> list[str]:
    pairs = most_confused_pairs(test["confusion_matrix"], n=5)
    return [f"`{p['true']}` taken for `{p['predicted']}`: {p['count']} times ({p['share']:.1%} "
            f"of the {p['true']} images)" for p in pairs] or ["no mistakes at all"]


def per_class_table(test: dict) -> Table:
    # Column sums, not the "predicted" field, so metrics.json files older than it still work.
    predicted = [sum(column) for column in zip(*test["confusion_matrix"], strict=True)]
    rows = [[r["label"], r["precision"], r["recall"], r["f1"], r["support"], predicted[i]]
            for i, r in enumerate(test["per_class"])]
    return Table(["class", "precision", "recall", "F1", "images", "predicted as this"], rows)


def tuning_text(files: RunFiles) -> str:
    config, done = files.config, finished(files.trials)
    best = _best_trial(files)
    found = (f" The best, trial {best['number']}, scored {best['score']:.4f}."
             if best is not None else "")
    return (f"A {config.tuner} search of the {config.space.upper()} space ran "
            f"{len(files.trials)} trials ({len(done)} finished), {config.objective_direction}"
            f"imising `{config.objective}` on the validation split.{found}")


def _best_trial(files: RunFiles) -> dict | None:
    done = finished(files.trials)
    if not done:
        return None
    pick = max if files.config.objective_direction == "max" else min
    return pick(done, key=lambda t: t["score"])


def trials_table(files: RunFiles) -> Table:
    names = tuned_names(files.trials)
    rows = [[t["number"], t["trial_id"], t["status"], t["score"], t["epochs"],
             *(t["values"].get(n) for n in names)] for t in files.trials]
    best = _best_trial(files)
    return Table(["#", "trial", "status", files.config.objective, "epochs", *names], rows,
                 highlight=files.trials.index(best) if best is not None else None)


def data_text(files: RunFiles) -> str:
    sizes = files.metrics["sizes"]
    return (f"Split `{files.metrics['split']}`: {sizes['train']:,} training, {sizes['val']:,} "
            f"validation and {sizes['test']:,} test images.")


def configuration_blocks(record: dict) -> list:
    versions = ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items())
    return [
        f"Command: `{record.get('command', '')}`",
        Table(["setting", "value"], sorted(record["config"].items())),
        f"Versions: {versions}.",
        Table(["data file", "SHA-256"], sorted(record.get("data_sha256", {}).items())),
    ]
