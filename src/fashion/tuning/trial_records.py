"""The trials of a KerasTuner search, read back from RUN_DIR/tuning, and what drove their scores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fashion.errors import RunDirError
from fashion.storage import files
from fashion.tuning import project, upstream

# Hyperband's bookkeeping values, not hyperparameters of the model.
TUNER_PREFIX = "tuner/"
# A random forest on fewer finished trials than this ranks noise.
MIN_TRIALS_FOR_IMPORTANCE = 5
# Hyperband's per-trial epoch budget, used as one more input of the importance forest.
EPOCHS_FEATURE = "epochs (budget)"


def load_trials(run_dir: Path) -> list[dict]:
    """Return every trial in the order the search started them.

    Each is {"number", "trial_id", "status", "score", "epochs", "values", "log_sampled",
    "searched"}:
    `score` is the objective (None while unfinished), `epochs` Hyperband's budget (None for
    other tuners), `values` the hyperparameters without Hyperband's bookkeeping, and
    `log_sampled` the names the space samples on a log scale (best plotted on one), and
    `searched` whether the space had anything to choose (a space that fixes every setting
    runs one trial that only checks it builds and trains).
    """
    tuning = Path(run_dir) / project.TUNING
    paths = {p.parent.name.removeprefix("trial_"): p
             for p in tuning.glob(f"trial_*/{upstream.TRIAL_FILE}")}
    if not paths:
        raise RunDirError(f"{tuning} holds no trial_*/trial.json; `fashion run` writes them")
    order = _start_order(tuning, paths)
    trials = []
    for number, trial_id in enumerate(order, start=1):
        record = files.read_json(paths[trial_id])
        hyperparameters = record.get("hyperparameters", {})
        values = hyperparameters.get("values", {})
        trials.append({
            "number": number, "trial_id": trial_id, "status": record.get("status"),
            "score": record.get("score"), "epochs": values.get(f"{TUNER_PREFIX}epochs"),
            "values": {k: v for k, v in values.items() if not k.startswith(TUNER_PREFIX)},
            "log_sampled": sorted(h["config"]["name"] for h in hyperparameters.get("space", [])
                                  if h.get("config", {}).get("sampling") == "log"),
            # False when every setting of the space is fixed: the trial only checked it.
            "searched": any(h.get("class_name") != "Fixed"
                            for h in hyperparameters.get("space", [])),
        })
    return trials


def _start_order(tuning: Path, paths: dict[str, Path]) -> list[str]:
    """The oracle's start order when it is readable, else the trial ids in order."""
    try:
        started = files.read_json(tuning / upstream.ORACLE_FILE).get("start_order", [])
    except RunDirError:
        started = []
    return [t for t in started if t in paths] + sorted(set(paths) - set(started))


def rank_trials(trials: list[dict], direction: str) -> list[dict]:
    """Finished trials best first (`direction` "max" or "min"), then the others in start order."""
    done = sorted(finished(trials), key=lambda t: t["score"], reverse=direction == "max")
    return done + [t for t in trials if t["score"] is None]


def format_trials_table(trials: list[dict], objective: str, direction: str) -> str:
    """Return the trials as a text table sorted by the objective, one row per trial."""
    header = ("rank", "trial", "status", objective, "epochs", "hyperparameters")
    rows = [header]
    for rank, trial in enumerate(rank_trials(trials, direction), start=1):
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial["values"].items())
        rows.append((str(rank), trial["trial_id"], str(trial["status"]).lower(),
                     format_score(trial["score"]), str(trial["epochs"] or ""), shown))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)),
                                row[-1]]) for row in rows)


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def format_score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def searched(trials: list[dict]) -> bool:
    """Whether the trials searched a space, rather than only checking one that fixes everything."""
    return not trials or any(trial.get("searched", True) for trial in trials)


def finished(trials: list[dict]) -> list[dict]:
    return [t for t in trials if t["score"] is not None]


def tuned_names(trials: list[dict]) -> list[str]:
    """Hyperparameter names that took more than one value: only these can explain scores."""
    names = sorted({name for t in trials for name in t["values"]})
    return [n for n in names if len({repr(t["values"].get(n)) for t in trials}) > 1]


def is_numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def spans_decades(values: list) -> bool:
    """Whether positive numbers span more than two decades, so a log scale shows them best."""
    return (bool(values) and is_numeric(values) and min(values) > 0
            and max(values) / min(values) > 100)


def encode_values(values: list) -> np.ndarray:
    """Return hyperparameter values as numbers a tree can split on.

    Numbers stay numbers (log10 when they span more than two decades, like learning rates);
    strings and booleans become category codes; a value absent from a trial (a conditional
    hyperparameter) becomes NaN.
    """
    present = [v for v in values if v is not None]
    if spans_decades(present):
        return np.array([math.log10(v) if v is not None else np.nan for v in values])
    if is_numeric(present):
        return np.array([float(v) if v is not None else np.nan for v in values])
    codes = {v: i for i, v in enumerate(sorted({repr(v) for v in present}))}
    return np.array([codes[repr(v)] if v is not None else np.nan for v in values], dtype=float)


def hyperparameter_importance(trials: list[dict], seed: int = 0) -> dict[str, float]:
    """Rank the tuned hyperparameters by how much of the score they explain, most first.

    The importance is a random forest's mean decrease in impurity, fitted to the finished
    trials' scores (Optuna's default, fANOVA, is a different measure); Hyperband's epoch budget
    is one more input, so short trials' low scores are not blamed on their hyperparameters.
    Empty when fewer than
    `MIN_TRIALS_FOR_IMPORTANCE` trials finished or nothing varied.
    """
    from sklearn.ensemble import RandomForestRegressor

    done = finished(trials)
    names = tuned_names(done)
    columns = {n: encode_values([t["values"].get(n) for t in done]) for n in names}
    if len({t["epochs"] for t in done}) > 1:
        columns[EPOCHS_FEATURE] = encode_values([t["epochs"] for t in done])
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE or not columns:
        return {}
    x = np.nan_to_num(np.column_stack(list(columns.values())), nan=-1.0)
    forest = RandomForestRegressor(n_estimators=200, random_state=seed)
    forest.fit(x, [t["score"] for t in done])
    ranked = sorted(zip(columns, forest.feature_importances_, strict=True), key=lambda p: -p[1])
    return {name: float(value) for name, value in ranked}
