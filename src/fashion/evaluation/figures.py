"""Figures of a run as PNG files: how good the model is, where it fails, what tuning found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)
from sklearn.metrics import ConfusionMatrixDisplay

from fashion.storage.classes import CLASS_NAMES
from fashion.tuning.trial_records import finished, is_numeric, spans_decades

DPI = 110


def _subplots(*args, figsize=None, **kwargs):
    """`pyplot.subplots` without pyplot: a bare Figure needs no GUI backend, leaves the
    process's backend and a notebook's inline plots alone, and is freed with its last reference."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save_figure(fig, path: Path) -> Path:
    """Write a figure as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _message_figure(title: str, message: str, path: Path) -> Path:
    """A small placeholder figure, so the report keeps its layout when there is nothing to plot."""
    fig, ax = _subplots(figsize=(7, 1.8))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, wrap=True)
    return save_figure(fig, path)


def plot_samples(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 5) -> Path:
    """Save a grid of `per_class` images of every class, each titled with its class name."""
    fig, axes = _subplots(per_class, len(CLASS_NAMES),
                          figsize=(1.3 * len(CLASS_NAMES), 1.45 * per_class), squeeze=False)
    for class_id, name in enumerate(CLASS_NAMES):
        rows = np.flatnonzero(labels == class_id)[:per_class]
        for row, ax in enumerate(axes[:, class_id]):
            ax.axis("off")
            if row < len(rows):
                ax.imshow(images[rows[row]].squeeze(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(name, fontsize=8)
    fig.suptitle("Fashion-MNIST training images, by class")
    fig.tight_layout()
    return save_figure(fig, path)


def kept_epoch(history: dict[str, list[float]], final_patience: int | None,
               monitor: str = "val_loss") -> tuple[int, str]:
    """The 1-based epoch whose weights the final model has, and why.

    `EarlyStopping(restore_best_weights=True)` watches `monitor` (validation loss or accuracy)
    and restores its first best epoch even when it never stopped; without it (the vgg space's
    schedule) the last epoch's weights are kept.
    """
    if final_patience is None:
        return len(history["loss"]), "the last, as the one-cycle schedule ends"
    if monitor == "val_accuracy":
        return int(np.nanargmax(history[monitor])) + 1, "highest validation accuracy"
    return int(np.nanargmin(history[monitor])) + 1, "lowest validation loss"


def plot_training_curves(history: dict[str, list[float]], final_patience: int | None,
                         path: Path, monitor: str = "val_loss") -> Path:
    """Save loss and accuracy per epoch, training and validation, with the kept epoch marked."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    kept, reason = kept_epoch(history, final_patience, monitor)
    fig, axes = _subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        ax.axvline(kept, color="0.4", linestyle="--",
                   label=f"epoch {kept}: weights kept ({reason})")
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric.capitalize()} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle("Final training of the best hyperparameters")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the shared legend below the panels
    return save_figure(fig, path)


def plot_confusion_matrices(matrix, path: Path) -> Path:
    """Save the test confusion matrix twice: counts, and each true class's row as percentages."""
    counts = np.asarray(matrix)
    rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = _subplots(1, 2, figsize=(17, 7.5))
    panels = ((counts, "d", "Counts"), (rows, ".0%", "Share of each true class (rows sum to 100%)"))
    for ax, (values, fmt, title) in zip(axes, panels, strict=True):
        shown = ConfusionMatrixDisplay(values, display_labels=CLASS_NAMES)
        shown.plot(ax=ax, cmap="Blues", values_format=fmt, colorbar=False, xticks_rotation=45)
        for text, value in zip(shown.text_.ravel(), values.ravel(), strict=True):
            if value == 0:  # empty cells stay blank so the mistakes stand out
                text.set_text("")
            elif text.get_text() == "0%":  # a few images are not none
                text.set_text("<1%")
            elif text.get_text() == "100%" and value < 1:  # nor is a few fewer than all
                text.set_text(">99%")
        ax.set_title(title)
        ax.set(xlabel="predicted class", ylabel="true class")
    fig.suptitle("Confusion matrix, test split")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_class_f1(per_class: list[dict], macro_f1: float, path: Path) -> Path:
    """Save F1 per class as bars, worst first, with precision and recall written beside them."""
    rows = sorted(per_class, key=lambda r: r["f1"])
    fig, ax = _subplots(figsize=(9, 4.8))
    ax.barh([r["label"] for r in rows], [r["f1"] for r in rows], color="tab:blue")
    for y, r in enumerate(rows):  # a column right of the axes, clear of bars and macro line
        ax.text(1.02, y, f"F1 {r['f1']:.3f}   P {r['precision']:.2f}   R {r['recall']:.2f}",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8.5,
                family="monospace")
    ax.axvline(macro_f1, color="tab:red", linestyle="--", label=f"macro F1 {macro_f1:.3f}")
    ax.set(xlim=(0, 1), xlabel="F1 score", title="F1 per class, test split (worst at top)")
    ax.invert_yaxis()
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_worst_misclassified(images: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray,
                             indices: np.ndarray, path: Path, columns: int = 8) -> Path:
    """Save the most confidently wrong test images, titled true / predicted / confidence."""
    title = "Most confident mistakes, test split"
    if len(indices) == 0:
        return _message_figure(title, "No test image was misclassified.", path)
    n_rows = -(-len(indices) // columns)
    fig, axes = _subplots(n_rows, columns, figsize=(1.55 * columns, 2.2 * n_rows),
                          squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), indices, strict=False):
        predicted = int(probabilities[i].argmax())
        ax.imshow(images[i].squeeze(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"true: {CLASS_NAMES[y_true[i]]}\npred: {CLASS_NAMES[predicted]}\n"
                     f"{probabilities[i, predicted]:.1%} sure", fontsize=7.5)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_tuning_history(trials: list[dict], objective: str, direction: str, path: Path) -> Path:
    """Save every finished trial's objective in start order, with the best-so-far line."""
    done = finished(trials)
    if not done:
        return _message_figure("Tuning history", "No trial finished.", path)
    numbers = np.array([t["number"] for t in done])
    scores = np.array([t["score"] for t in done], dtype=float)
    best_so_far = (np.maximum if direction == "max" else np.minimum).accumulate(scores)
    fig, ax = _subplots(figsize=(9, 4.2))
    budgets = sorted({t["epochs"] for t in done if t["epochs"] is not None})
    for budget in budgets or [None]:
        chosen = np.array([t["epochs"] == budget for t in done])
        label = f"trial of {budget} epoch(s)" if budget is not None else "trial"
        ax.scatter(numbers[chosen], scores[chosen], s=28, label=label, zorder=3)
    ax.step(numbers, best_so_far, where="post", color="black", label="best so far")
    best = int(scores.argmax() if direction == "max" else scores.argmin())
    ax.annotate(f"best {scores[best]:.4f}", (numbers[best], scores[best]),
                xytext=(6, 6), textcoords="offset points", fontsize=8)
    ax.set(xlabel="trial (order started)", ylabel=objective,
           title=f"Tuning history: {objective} of {len(done)} finished trials")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_hyperparameter_importance(importance: dict[str, float], n_finished: int,
                                   path: Path) -> Path:
    """Save the importance ranking as bars, most important at the top."""
    title = "Hyperparameter importance"
    if not importance:
        return _message_figure(title, f"Too few finished trials ({n_finished}) or nothing "
                               "varied: no ranking.", path)
    fig, ax = _subplots(figsize=(8, 0.42 * len(importance) + 1.4))
    bars = ax.barh(list(importance), list(importance.values()), color="tab:green")
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="share of the score's variance explained (random forest, sums to 1)",
           xlim=(0, max(importance.values()) * 1.15),
           title=f"{title} over {n_finished} finished trials")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_hyperparameter_effects(trials: list[dict], names: list[str], objective: str,
                                path: Path, columns: int = 4) -> Path:
    """Save one panel per hyperparameter: every finished trial's objective against its value."""
    done = finished(trials)
    if not done or not names:
        return _message_figure("Hyperparameter effects", "No hyperparameter varied.", path)
    n_rows = -(-len(names) // columns)
    fig, axes = _subplots(n_rows, columns, figsize=(3.6 * columns, 2.9 * n_rows),
                          squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    budgets = sorted({t["epochs"] for t in done if t["epochs"] is not None}) or [None]
    for ax, name in zip(axes.ravel(), names, strict=False):
        _plot_effect(ax, name, done, objective, budgets)
    fig.suptitle(f"Effect of each hyperparameter on {objective} (one dot per finished trial)")
    if len(budgets) > 1:  # Hyperband: short trials score lower whatever their values
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(budgets), fontsize=9)
    fig.tight_layout(rect=(0, 0.04 if len(budgets) > 1 else 0, 1, 1))
    return save_figure(fig, path)


def _plot_effect(ax, name: str, done: list[dict], objective: str, budgets: list) -> None:
    used = [t for t in done if t["values"].get(name) is not None]
    values = [t["values"][name] for t in used]
    numeric = is_numeric(values)
    categories = sorted({repr(v) for v in values})
    for budget in budgets:
        chosen = [(v, t["score"]) for v, t in zip(values, used, strict=True)
                  if t["epochs"] == budget]
        xs = [v if numeric else categories.index(repr(v)) for v, _ in chosen]
        ax.scatter(xs, [score for _, score in chosen], s=18, alpha=0.8,
                   label=f"trial of {budget} epoch(s)")
    if not numeric:
        ax.set_xticks(range(len(categories)), [c.strip("'") for c in categories], fontsize=8)
    elif spans_decades(values) or any(name in t.get("log_sampled", ()) for t in used):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        integers = all(isinstance(v, int) for v in values)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=integers))
    ax.set_title(name, fontsize=9)
    ax.set_ylabel(objective, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def plot_runs_side_by_side(names: list[str], histories: list[dict], tuning_seconds: list[float],
                           training_seconds: list[float], path: Path) -> Path:
    """Save every run's validation accuracy per epoch, and against its run's wall time."""
    fig, (by_epoch, by_time) = _subplots(1, 2, figsize=(12, 4.5))
    for name, history, tuning, training in zip(names, histories, tuning_seconds,
                                               training_seconds, strict=True):
        accuracy = history.get("val_accuracy") or history.get("accuracy", [])
        epochs = np.arange(1, len(accuracy) + 1)
        minutes = (tuning + training * epochs / max(len(accuracy), 1)) / 60
        by_epoch.plot(epochs, accuracy, "o-", markersize=3, label=name)
        by_time.plot(minutes, accuracy, "o-", markersize=3, label=name)
    by_epoch.set(xlabel="epoch of the final training", ylabel="validation accuracy",
                 title="Per epoch")
    by_time.set(xlabel="minutes since the run started", ylabel="validation accuracy",
                title="Against wall time")
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3)
    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(*by_epoch.get_legend_handles_labels(), loc="lower center",
               ncol=min(len(names), 3), fontsize=9)
    fig.tight_layout(rect=(0, 0.04 + 0.04 * ((len(names) - 1) // 3 + 1), 1, 1))
    return save_figure(fig, path)
