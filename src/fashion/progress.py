"""Watching a search: a line per finished trial, with the best so far and the budget left."""

from __future__ import annotations

import math

import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus


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


def format_score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def progress_line(oracle: keras_tuner.Oracle, trial: Trial, elapsed: float,
                  budget_left: float | None = None) -> str:
    """Return e.g. 'trial 3/13 done: val_accuracy 0.8123, best 0.8400, elapsed 1m02s, ...'."""
    total = planned_trials(oracle)
    done = len(oracle.end_order)
    best = oracle.get_best_trials(1)
    best_score = best[0].score if best and best[0].status == TrialStatus.COMPLETED else None
    outcome = (f"{oracle.objective.name} {format_score(trial.score)}"
               if trial.status == TrialStatus.COMPLETED else trial.status.lower())
    parts = [f"trial {done}/{total or '?'} done (id {trial.trial_id}): {outcome}",
             f"best {format_score(best_score)}", f"elapsed {format_duration(elapsed)}"]
    if budget_left is not None:
        parts.append(f"budget left {format_duration(budget_left)}")
    return "[fashion] " + ", ".join(parts)
