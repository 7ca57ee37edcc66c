"""The main job: data -> tune -> retrain the best -> evaluate, into one run directory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras

from fashion import rundir
from fashion.config import RunConfig
from fashion.data import load_splits, sample_train
from fashion.distribute import STANDALONE, Role
from fashion.errors import ConfigError
from fashion.evaluate import evaluate_model
from fashion.model_files import save_model
from fashion.report import write_report
from fashion.spaces import build_hypermodel
from fashion.train import train_best
from fashion.trial_records import load_trials
from fashion.tune import build_tuner, run_search


@dataclass(frozen=True)
class RunResult:
    """What a run made: its folder, the trained model, its metrics and the search's trials."""

    run_dir: Path
    model: keras.Model
    metrics: dict  # as metrics.json: "validation" and "test" from `evaluate_model`, timings
    best_hyperparameters: dict
    trials: list[dict]  # as `fashion.trial_records.load_trials`


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def search(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
           command: str = "", verbose: int = 1, on_progress=None, role: Role = STANDALONE):
    """Load the data and run the search into `run_dir`, resuming an unfinished one.

    Nothing is written until the data has loaded and the directory has been checked, so bad
    input leaves no partial run directory. A distributed worker (see `fashion.distribute`)
    writes only its trials: the chief writes the run's files.

    Args:
        on_progress: called with a line of progress after each finished trial, and when a
            chief drops a silent worker.
        role: standalone (the default), or this process's role in a distributed search.

    Returns:
        `(run_dir, splits, best_hyperparameters, tuning_seconds)`; a worker's best is None.
    """
    if role.is_worker and overwrite:
        raise ConfigError("a worker cannot --overwrite; pass it to the chief, which owns the run")
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    splits = load_splits(config)
    rundir.prepare(run_dir, config, overwrite,
                   hypermodel=build_hypermodel(config.space, seed=config.seed))
    keras.utils.set_random_seed(config.seed)
    if not role.is_worker:
        rundir.write_json(run_dir / rundir.CONFIG,
                          rundir.config_record(config, splits.data_sha256, command))

    started = time.monotonic()
    tuner = build_tuner(config, run_dir, role=role, on_message=on_progress)
    search_splits = sample_train(splits, config.search_images, config.seed)
    best_hp = run_search(tuner, search_splits, config, run_dir, verbose=verbose,
                         on_progress=on_progress)
    if best_hp is not None:
        rundir.write_json(run_dir / rundir.BEST_HYPERPARAMETERS, best_hp.values)
    return run_dir, splits, best_hp, time.monotonic() - started


def run(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
        command: str = "", verbose: int = 1, on_progress=None,
        role: Role = STANDALONE) -> RunResult:
    """Search, retrain the best from scratch, evaluate, and save every artefact of the run."""
    if role.is_worker:
        raise ConfigError("`fashion run` cannot be a tuning worker; run `fashion tune --worker "
                          "ID` on the workers and `fashion run` (or `tune --chief`) on the chief")
    run_dir, splits, best_hp, tuning_seconds = search(config, run_dir, overwrite, command, verbose,
                                                      on_progress, role)

    started = time.monotonic()
    model, history = train_best(best_hp, splits, config, verbose=verbose)
    training_seconds = time.monotonic() - started
    save_model(model, run_dir / rundir.MODEL)
    rundir.write_history(run_dir / rundir.HISTORY, history)

    metrics = {
        "split": splits.name,
        "sizes": splits.sizes(),
        "parameters": int(model.count_params()),
        "epochs_trained": len(next(iter(history.values()))),
        "tuning_seconds": round(tuning_seconds, 1),
        "training_seconds": round(training_seconds, 1),
        "validation": evaluate_model(model, splits.x_val, splits.y_val, "validation"),
        "test": evaluate_model(model, splits.x_test, splits.y_test, "test"),
    }
    rundir.write_json(run_dir / rundir.METRICS, metrics)
    write_report(run_dir, model=model, splits=splits)
    return RunResult(run_dir, model, metrics, best_hp.values, load_trials(run_dir))
