"""Watching a search: a line per finished trial, with the best so far and the budget left."""

from __future__ import annotations

from keras_tuner.engine.hyperparameters import Fixed

from fashion.tuning.trial_records import format_duration, format_score
from fashion.tuning.upstream import TrialStatus, planned_trials


def searches_nothing(hyperparameters) -> bool:
    """Whether a space leaves nothing to choose (every setting `Fixed`): its one short trial
    only checks that it builds and trains, and its score means nothing. An empty space is not
    known yet (KerasTuner fills it when the tuner is built), so it does not count."""
    space = hyperparameters.space
    return bool(space) and all(isinstance(hp, Fixed) for hp in space)


def progress_line(oracle, trial, elapsed: float, budget_left: float | None = None) -> str:
    """Return e.g. 'trial 3/13 done: val_accuracy 0.8123, best 0.8400, elapsed 1m02s, ...'.

    A space with nothing to search gets 'space checked: it builds and trains ...' instead of
    a trial's score, which a reader would take for a result.
    """
    if searches_nothing(oracle.hyperparameters):
        outcome = ("it builds and trains" if trial.status == TrialStatus.COMPLETED
                   else f"its check trial {trial.status.lower()}")
        return (f"[fashion] space checked: {outcome} (nothing to search: every setting is "
                f"fixed), {format_duration(elapsed)}")
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

