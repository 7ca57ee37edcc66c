"""Search a space with one of KerasTuner's tuners: budgets, resume, progress, chief and workers."""

from __future__ import annotations

import zlib
from functools import partial
from pathlib import Path

import keras
import keras_tuner

from fashion.errors import SearchError
from fashion.spaces.registry import hypermodel_for
from fashion.storage.dataset import Splits, one_hot
from fashion.training.config import RunConfig
from fashion.training.train import LOGS, tensorboard_logs
from fashion.tuning import project, upstream
from fashion.tuning.distribute import STANDALONE, Role
from fashion.tuning.progress import progress_line, searches_nothing


def trial_seed(seed: int, trial_id: str) -> int:
    """Return the seed of one trial, derived from the run's seed and the trial's id."""
    return zlib.crc32(f"{seed}/{trial_id}".encode())


def initial_points(max_trials: int) -> int:
    """Random trials before the Gaussian process takes over: a third of the trials, at least 2.

    KerasTuner's default, three times the number of hyperparameters (about 36 for the CNN),
    would make any search of fewer trials a plain random search.
    """
    return max(2, max_trials // 3)


def build_oracle(config: RunConfig) -> keras_tuner.Oracle:
    """Return the configured tuner's oracle: the part that decides which trial runs next."""
    objective = keras_tuner.Objective(config.objective, config.objective_direction)
    if config.tuner == "hyperband":
        return upstream.HyperbandOracle(objective=objective, max_epochs=config.max_epochs,
                                        factor=config.factor, seed=config.seed)
    if config.tuner == "random":
        return upstream.RandomSearchOracle(objective=objective, max_trials=config.max_trials,
                                           seed=config.seed)
    return upstream.BayesianOptimizationOracle(
        objective=objective, max_trials=config.max_trials,
        num_initial_points=initial_points(config.max_trials), seed=config.seed)


def build_tuner(config: RunConfig, run_dir: Path, role: Role = STANDALONE,
                on_message=None) -> keras_tuner.Tuner:
    """Return the configured tuner, its project kept in `run_dir/tuning`.

    An existing project in the same folder is reloaded, so a rerun resumes the search; a worker
    asks the chief named by `role` for its trials, and a chief tells `on_message` of workers it
    drops.
    """
    tuner_class = upstream.HyperbandTuner if config.tuner == "hyperband" else \
        upstream.SearchTuner
    return tuner_class(
        oracle=build_oracle(config),
        hypermodel=hypermodel_for(config),
        trial_seed=partial(trial_seed, config.seed),
        role=role,
        on_message=on_message,
        executions_per_trial=config.executions_per_trial,
        directory=str(run_dir),
        project_name=project.TUNING,
    )


def search_callbacks(config: RunConfig, run_dir: Path) -> list[keras.callbacks.Callback]:
    """Return the callbacks of every trial: TensorBoard's logs, and early stopping on the
    objective when asked for."""
    callbacks = tensorboard_logs(Path(run_dir) / LOGS / "search")
    if config.search_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=config.objective, mode=config.objective_direction,
            patience=config.search_patience))
    return callbacks


def _watch(tuner, config: RunConfig, run_dir: Path, on_progress) -> None:
    """Enforce the time budget and report each finished trial, where the oracle lives."""
    clock = project.SearchClock.start(run_dir)
    if config.time_budget is not None:
        tuner.oracle.deadline = clock.deadline(config.time_budget)

    def on_trial_end(oracle, trial):
        clock.save()
        if on_progress is not None:
            left = None if config.time_budget is None else \
                60 * config.time_budget - clock.elapsed()
            on_progress(progress_line(oracle, trial, clock.elapsed(), left))

    tuner.oracle.trial_listeners.append(on_trial_end)


def run_search(tuner, splits: Splits, config: RunConfig, run_dir: Path, verbose: int = 1,
               on_progress=None) -> keras_tuner.HyperParameters | None:
    """Search on the training split, scoring on validation; return the best hyperparameters.

    `on_progress`, when given, receives a line per finished trial. A worker returns None: its
    chief holds the results.
    """
    worker = tuner.role.is_worker
    if not worker and searches_nothing(tuner.oracle.hyperparameters):
        verbose = 0  # KerasTuner's own lines would show the check's score as a trial's result
    if not worker:
        _watch(tuner, config, run_dir, on_progress)
    if verbose:
        tuner.search_space_summary()
    try:
        tuner.search(
            splits.x_train, one_hot(splits.y_train),
            validation_data=(splits.x_val, one_hot(splits.y_val)),
            epochs=config.max_epochs,
            callbacks=search_callbacks(config, run_dir),
            verbose=verbose,
        )
    except RuntimeError as e:  # KerasTuner's "Number of consecutive failures exceeded ..."
        raise SearchError(f"the search stopped: {e}; see the trials' errors above, or rerun "
                          "with other options") from e
    if worker:
        return None
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise SearchError("the search finished no trial; see the trials' errors above, or "
                          "rerun with other options")
    return best[0]
