"""Build a run directory's report (figures, report.html, report.md) from its saved files alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fashion.evaluation import figures as plots
from fashion.evaluation.evaluate import (
    most_confused_pairs,
    predict_probabilities,
    worst_misclassified,
)
from fashion.evaluation.report_page import PageFigure, Section, Table, render_html, render_markdown
from fashion.inference.model_files import load_model
from fashion.inference.photo_splits import load_photo_splits
from fashion.runs import rundir
from fashion.runs.plan import Plan
from fashion.spaces.registry import fixed_hyperparameters
from fashion.storage.dataset import load_splits
from fashion.training.device import describe
from fashion.tuning.trial_records import (
    EPOCHS_FEATURE,
    finished,
    hyperparameter_importance,
    searched,
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
                  "forest's mean decrease in impurity, fitted to the finished trials. A rough "
                  "guide with few trials; a conditional hyperparameter (one that exists only for "
                  "some values of another, like the third block's filters) also stands for its "
                  "parent's value.",
    "effects": "{objective} against each tuned hyperparameter, most important first.",
}


def write_partial_report(run_dir: Path) -> Path:
    """Write report-partial.html and .md: the trials and training curves so far of a run that is
    still running or was interrupted; return the HTML. Read-only for the run's own files."""
    run = rundir.RunDir(run_dir)
    files = run.read_so_far()
    trials = files.trials
    staged = run.staging()
    try:
        folder = staged.figures
        figures = make_trial_figures(files, folder)
        if files.history:
            figures["curves"] = _figure("curves", plots.plot_training_curves(
                files.history, files.config.final_patience, folder / "training_curves.png",
                files.config.final_monitor), files.config.objective)
        done = len(finished(trials))
        sections = [Section("Partial report", [
            f"This run has not finished: it is still running, or was interrupted (rerun its "
            f"command to resume it). {len(trials)} trials so far, {done} finished"
            + (f"; the final training has run {len(next(iter(files.history.values())))} epochs."
               if files.history else ".")])]
        if "curves" in figures:
            sections.append(Section("Training so far", [figures["curves"]]))
        if trials:
            sections.append(Section("What tuning found so far", [
                tuning_text(files), figures["tuning"], figures["importance"],
                figures["effects"], "Every trial (the best highlighted):", trials_table(files)]))
        sections.append(Section("Configuration", configuration_blocks(files.record)))
        title = f"Fashion-MNIST run {run.path.resolve().name} (partial)"
        staged.report_html(partial=True).write_text(render_html(title, sections, folder))
        staged.report_markdown(partial=True).write_text(
            render_markdown(title, sections, run.figures.name))
        publish(staged, run, partial=True)
    finally:
        shutil.rmtree(staged.path, ignore_errors=True)
    return run.report_html(partial=True)


def write_report(run_dir: Path, model=None, splits=None, data_dir: str | None = None) -> Path:
    """Write figures/, report.html and report.md into a finished run directory; return the HTML.

    `model` and `splits` are loaded from the run (model.keras, the data named by config.json)
    when not given. Everything is built in a hidden folder first and moved into place at the
    end, so a failure leaves the previous report untouched. The partial report of the run, if
    one was written while it ran, is removed.
    """
    run = rundir.RunDir(run_dir)
    files = run.read()
    if model is None:
        model = load_model(run.model_path)
    photos = files.config.photo_dir is not None  # a `fashion adapt` run
    if splits is None:
        splits = load_photo_splits(files.config) if photos else load_splits(files.config,
                                                                              data_dir)
    probabilities = predict_probabilities(model, splits.x_test)
    staged = run.staging()
    try:
        figures = make_figures(files, splits, probabilities, staged.figures)
        title = f"{'Photo' if photos else 'Fashion-MNIST'} run {run.path.resolve().name}"
        sections = build_sections(files, figures)
        staged.report_html().write_text(render_html(title, sections, staged.figures))
        staged.report_markdown().write_text(render_markdown(title, sections, run.figures.name))
        publish(staged, run)
    finally:
        shutil.rmtree(staged.path, ignore_errors=True)
    for page in (run.report_html(partial=True), run.report_markdown(partial=True)):
        page.unlink(missing_ok=True)
    return run.report_html()


def publish(staged: rundir.RunDir, run: rundir.RunDir, partial: bool = False) -> None:
    """Move the staged figures and pages over the old ones, figures first so pages never
    dangle, and the HTML page last: it marks a finished run."""
    if run.figures.exists():
        os.replace(run.figures, staged.path / "old-figures")
    os.replace(staged.figures, run.figures)
    os.replace(staged.report_markdown(partial), run.report_markdown(partial))
    os.replace(staged.report_html(partial), run.report_html(partial))


def _figure(key: str, path: Path, objective: str) -> PageFigure:
    return PageFigure(path.name, CAPTIONS[key].format(objective=objective))


def make_trial_figures(files: rundir.SavedRun, folder: Path) -> dict[str, PageFigure]:
    """Draw the figures of the search into `folder`: its history, importance and effects."""
    config, trials = files.config, files.trials
    objective, direction = config.objective, config.objective_direction
    importance = hyperparameter_importance(trials, seed=config.seed)
    names = [n for n in importance if n != EPOCHS_FEATURE] or tuned_names(finished(trials))
    paths = {
        "tuning": plots.plot_tuning_history(trials, objective, direction,
                                             folder / "tuning_history.png"),
        "importance": plots.plot_hyperparameter_importance(
            importance, len(finished(trials)), folder / "hyperparameter_importance.png"),
        "effects": plots.plot_hyperparameter_effects(trials, names, objective,
                                                      folder / "hyperparameter_effects.png"),
    }
    return {key: _figure(key, path, objective) for key, path in paths.items()}


def make_figures(files: rundir.SavedRun, splits, probabilities,
                 folder: Path) -> dict[str, PageFigure]:
    """Draw every figure of the report into `folder`; return them by topic, captioned."""
    test, config = files.metrics["test"], files.config
    worst = worst_misclassified(splits.y_test, probabilities, N_WORST)
    paths = {
        "curves": plots.plot_training_curves(files.history, config.final_patience,
                                              folder / "training_curves.png",
                                              config.final_monitor),
        "confusion": plots.plot_confusion_matrices(test["confusion_matrix"],
                                                    folder / "confusion_matrix.png"),
        "f1": plots.plot_per_class_f1(test["per_class"], test["macro_f1"],
                                       folder / "per_class_f1.png"),
        "worst": plots.plot_worst_misclassified(splits.x_test, splits.y_test, probabilities,
                                                 worst, folder / "worst_misclassified.png"),
        "samples": plots.plot_samples(splits.x_train, splits.y_train, folder / "samples.png"),
    }
    return {**{key: _figure(key, path, config.objective) for key, path in paths.items()},
            **(make_trial_figures(files, folder) if not config.photo_dir else {})}


def build_sections(files: rundir.SavedRun, figures: dict[str, PageFigure]) -> list[Section]:
    """The report's content, in the order a reader asks: how good, where it fails, why."""
    if files.config.photo_dir:
        return photo_sections(files, figures)
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


def photo_sections(files: rundir.SavedRun, figures: dict[str, PageFigure]) -> list[Section]:
    """A `fashion adapt` run's report: no search; its test split is the held-out photos."""
    m, config = files.metrics, files.config
    test, sizes = m["test"], m["sizes"]
    return [
        Section("How good", [
            f"On the {test['n_images']:,} photos held out of `{config.photo_dir}` the model is "
            f"right {test['accuracy']:.2%} of the time (macro F1 {test['macro_f1']:.4f}); the "
            f"right class is among its top two guesses {test['top2_accuracy']:.2%} of the "
            f"time. It is the {config.space} space's network of {m['parameters']:,} "
            f"parameters, trained {m['epochs_trained']} epochs in "
            f"{m['training_seconds']:.0f} s; the held-out photos are this report's test split.",
            metrics_table(m, parts=("test",))]),
        Section("Where it fails", [
            "The classes the model mixes up most on the held-out photos:",
            confusion_bullets(test), figures["confusion"], figures["f1"],
            per_class_table(test), figures["worst"]]),
        Section("Training", [figures["curves"]]),
        Section("Data", [
            f"{sizes['train']:,} photos trained on and {sizes['test']:,} held out "
            f"({config.photo_holdout:.0%}, by group where the folder names groups), and "
            f"{sizes.get('fashion_mnist', 0):,} Fashion-MNIST training images mixed in.",
            figures["samples"]]),
        Section("Configuration", configuration_blocks(files.record)),
    ]


def summary_text(files: rundir.SavedRun) -> str:
    m, config = files.metrics, files.config
    test = m["test"]
    kept, _ = plots.kept_epoch(files.history, config.final_patience, config.final_monitor)
    return (f"On the {test['n_images']:,} test images of the `{m['split']}` split the model is "
            f"right {test['accuracy']:.2%} of the time (macro F1 {test['macro_f1']:.4f}); the "
            f"right class is among its top two guesses {test['top2_accuracy']:.2%} of the time. "
            f"It is a {config.space.upper()} of {m['parameters']:,} parameters, trained "
            f"{m['epochs_trained']} epochs in {m['training_seconds']:.0f} s (the weights of epoch "
            f"{kept} kept), after a {m['tuning_seconds']:.0f} s "
            + (f"{config.tuner} search." if searched(files.trials) else "check of the space."))


def metrics_table(metrics: dict, parts=("validation", "test")) -> Table:
    names = ["loss", "accuracy", "top2_accuracy", "macro_precision", "macro_recall", "macro_f1"]
    rows = [[_split_label(metrics, part), metrics[part]["n_images"],
             *(metrics[part][n] for n in names)] for part in parts]
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


def tuning_text(files: rundir.SavedRun) -> str:
    config, done = files.config, finished(files.trials)
    best = _best_trial(files)
    found = (f" The best, trial {best['number']}, scored {best['score']:.4f}."
             if best is not None else "")
    fixed = fixed_hyperparameters(config.space)
    fixed_text = (" Fixed by evidence, not searched (short trials cannot rank them): "
                  + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + "." if fixed else "")
    if not searched(files.trials):
        return (f"Nothing was searched: the {config.space.upper()} space fixes every setting. "
                f"One short trial checked that it builds and trains; its score measures "
                f"nothing.{fixed_text}")
    return (f"A {config.tuner} search of the {config.space.upper()} space ran "
            f"{len(files.trials)} trials ({len(done)} finished), {config.objective_direction}"
            f"imising `{config.objective}` on the validation split.{found}{fixed_text}")


def _best_trial(files: rundir.SavedRun) -> dict | None:
    done = finished(files.trials)
    if not done:
        return None
    pick = max if files.config.objective_direction == "max" else min
    return pick(done, key=lambda t: t["score"])


def trials_table(files: rundir.SavedRun) -> Table:
    names = tuned_names(files.trials)
    rows = [[t["number"], t["trial_id"], t["status"], t["score"], t["epochs"],
             *(t["values"].get(n) for n in names)] for t in files.trials]
    best = _best_trial(files)
    return Table(["#", "trial", "status", files.config.objective, "epochs", *names], rows,
                 highlight=files.trials.index(best) if best is not None else None)


def _split_label(metrics: dict, part: str) -> str:
    if part == "validation" and metrics.get("validation_trained_on"):
        return "validation (trained on)"
    return metrics[part]["split"]


def data_text(files: rundir.SavedRun) -> str:
    sizes = files.metrics["sizes"]
    folded = (" The search ranked its trials on the validation images; the final training then "
              "learnt from them too, so the validation figures describe trained-on images and "
              "only the test split judges the model." if files.metrics.get("validation_trained_on")
              else "")
    return (f"Split `{files.metrics['split']}`: {sizes['train']:,} training, {sizes['val']:,} "
            f"validation and {sizes['test']:,} test images.{folded}")


def plan_text(saved: dict | None) -> list[str]:
    """The budget's plan as a sentence; nothing for a run without one."""
    plan = Plan.from_saved(saved)
    if plan is None:
        return []
    details = "; ".join(line.strip() for line in plan.lines()[1:])
    return [f"Plan for the {plan.budget_minutes:g}-minute budget: {details}."]


def configuration_blocks(record: dict) -> list:
    versions = ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items())
    device = record.get("device")  # runs from before issue 12 saved none
    return [
        f"Command: `{record.get('command', '')}`",
        *([f"Device: {describe(device)}."] if device else []),
        *plan_text(record.get("plan")),
        Table(["setting", "value"], sorted(record["config"].items())),
        f"Versions: {versions}.",
        Table(["data file", "SHA-256"], sorted(record.get("data_sha256", {}).items())),
    ]
