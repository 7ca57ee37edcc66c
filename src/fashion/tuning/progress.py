"""Watching a search: a line per finished trial, with the best so far and the budget left."""

from __future__ import annotations

from fashion.tuning.trial_records import format_duration, format_score
from fashion.tuning.upstream import TrialStatus, planned_trials


def progress_line(oracle, trial, elapsed: float, budget_left: float | None = None) -> str:
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

