"""Search a space with one of KerasTuner's tuners, inside a wall-clock budget."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from fashion.config import RunConfig
from fashion.data import Splits, one_hot
from fashion.spaces import build_hypermodel

PROJECT_NAME = "tuning"


def build_tuner(config: RunConfig, run_dir: Path, overwrite: bool = False) -> keras_tuner.Tuner:
    """Return the configured KerasTuner tuner, its project kept in `run_dir/tuning`.

    An existing project in the same folder is reloaded, so a rerun resumes the search.
    """
    common = dict(
        hypermodel=build_hypermodel(config.space, seed=config.seed),
        objective=keras_tuner.Objective(config.objective, config.objective_direction),
        executions_per_trial=config.executions_per_trial,
        seed=config.seed,
        directory=str(run_dir),
        project_name=PROJECT_NAME,
        overwrite=overwrite,
    )
    if config.tuner == "hyperband":
        return keras_tuner.Hyperband(max_epochs=config.max_epochs, factor=config.factor, **common)
    if config.tuner == "random":
        return keras_tuner.RandomSearch(max_trials=config.max_trials, **common)
    return keras_tuner.BayesianOptimization(max_trials=config.max_trials, **common)


def stop_new_trials_after(oracle: keras_tuner.Oracle, deadline: float) -> None:
    """Make the oracle answer STOPPED once `time.monotonic()` passes `deadline`.

    Running trials finish; the search then ends as it does when the space is exhausted, so the
    best trial so far is kept. Done in the oracle so a distributed chief enforces it for all.
    """
    populate_space = oracle.populate_space

    def populate_space_within_budget(trial_id):
        if time.monotonic() >= deadline:
            return {"status": TrialStatus.STOPPED, "values": None}
        return populate_space(trial_id)

    oracle.populate_space = populate_space_within_budget


def search_callbacks(config: RunConfig) -> list[keras.callbacks.Callback]:
    """Return the callbacks of every trial: early stopping on the objective when asked for."""
    if config.search_patience is None:
        return []
    return [keras.callbacks.EarlyStopping(
        monitor=config.objective, mode=config.objective_direction,
        patience=config.search_patience)]


def run_search(tuner: keras_tuner.Tuner, splits: Splits, config: RunConfig,
               verbose: int = 1) -> keras_tuner.HyperParameters:
    """Search on the training split, scoring on validation; return the best hyperparameters."""
    if config.time_budget is not None:
        stop_new_trials_after(tuner.oracle, time.monotonic() + 60 * config.time_budget)
    tuner.search(
        splits.x_train, one_hot(splits.y_train),
        validation_data=(splits.x_val, one_hot(splits.y_val)),
        epochs=config.max_epochs,
        callbacks=search_callbacks(config),
        verbose=verbose,
    )
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise RuntimeError("the search finished no trial; see the trial messages above")
    return best[0]
