"""Watching a search: a line per finished trial, and the table of a run directory's trials."""

from __future__ import annotations

import math
from pathlib import Path

import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus

from fashion.errors import RunDirError

# Hyperband's bookkeeping values; only the epochs a trial trained to are worth showing.
HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round",
                  "tuner/trial_id")


def follow_trials(oracle: keras_tuner.Oracle, on_trial_end) -> None:
    """Call `on_trial_end(oracle, trial)` after the oracle has recorded each finished trial.

    Hooked into the oracle rather than the tuner so that a distributed chief, which runs no
    trial itself, reports the trials of all its workers.
    """
    end_trial = oracle.end_trial

    def end_trial_and_report(trial):
        end_trial(trial)
        on_trial_end(oracle, oracle.trials[trial.trial_id])

    oracle.end_trial = end_trial_and_report


def planned_trials(oracle: keras_tuner.Oracle) -> int | None:
    """Return how many trials the search will run at most, or None when it cannot be known."""
    if getattr(oracle, "max_trials", None):
        return oracle.max_trials
    if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        # Hyperband sizes itself: every round of every bracket, per iteration.
        per_iteration = sum(oracle._get_size(bracket, round_num)
                            for bracket in range(oracle._get_num_brackets())
                            for round_num in range(bracket + 1))
        iterations = oracle.hyperband_iterations
        return per_iteration * iterations if math.isfinite(iterations) else None
    return None


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def _score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def progress_line(oracle: keras_tuner.Oracle, trial: Trial, elapsed: float,
                  budget_left: float | None = None) -> str:
    """Return e.g. 'trial 3/13 done: val_accuracy 0.8123, best 0.8400, elapsed 1m02s, ...'."""
    total = planned_trials(oracle)
    done = len(oracle.end_order)
    best = oracle.get_best_trials(1)
    best_score = best[0].score if best and best[0].status == TrialStatus.COMPLETED else None
    outcome = (f"{oracle.objective.name} {_score(trial.score)}"
               if trial.status == TrialStatus.COMPLETED else trial.status.lower())
    parts = [f"trial {done}/{total or '?'} done (id {trial.trial_id}): {outcome}",
             f"best {_score(best_score)}", f"elapsed {format_duration(elapsed)}"]
    if budget_left is not None:
        parts.append(f"budget left {format_duration(budget_left)}")
    return "[fashion] " + ", ".join(parts)


def load_trials(project_dir: Path) -> list[Trial]:
    """Read every trial of a KerasTuner project, whatever its status."""
    files = sorted(Path(project_dir).glob("trial_*/trial.json"))
    if not files:
        raise RunDirError(f"{project_dir} holds no trials; `fashion tune --out RUN_DIR` "
                          "makes them")
    trials = []
    for path in files:
        try:
            trials.append(Trial.load(str(path)))
        except (ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"{path} is corrupt ({e}); delete that trial's folder and rerun "
                              "the search to run it again") from e
    return trials


def rank_trials(trials: list[Trial], direction: str) -> list[Trial]:
    """Completed trials best first, then the others in id order."""
    completed = [t for t in trials if t.status == TrialStatus.COMPLETED and t.score is not None]
    completed.sort(key=lambda t: t.score, reverse=direction == "max")
    others = sorted((t for t in trials if t not in completed), key=lambda t: t.trial_id)
    return completed + others


def trials_table(trials: list[Trial], objective: str, direction: str) -> str:
    """Return the trials as a text table sorted by objective, one row per trial."""
    header = ("rank", "trial", "status", objective, "epochs", "hyperparameters")
    rows = [header]
    for rank, trial in enumerate(rank_trials(trials, direction), start=1):
        values = trial.hyperparameters.values
        shown = ", ".join(f"{k}={_format_value(v)}" for k, v in values.items()
                          if k not in HYPERBAND_KEYS)
        epochs = values.get("tuner/epochs", "")
        rows.append((str(rank), trial.trial_id, trial.status.lower(), _score(trial.score),
                     str(epochs), shown))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)),
                                row[-1]])
                     for row in rows)


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
