"""The main job: data -> tune -> retrain the best -> evaluate, into one run directory."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from fashion import distribute, rundir
from fashion.config import RunConfig
from fashion.data import load_fashion_mnist, sample_train, split_data
from fashion.errors import ConfigError
from fashion.evaluate import evaluate_model
from fashion.run_report import write_report
from fashion.train import train_best
from fashion.tune import PROJECT_NAME, build_tuner, check_resumable_space, run_search


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict
    best_hyperparameters: dict


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(run_dir: Path, config: RunConfig, overwrite: bool) -> None:
    """Empty the folder for a fresh run, or check that it may be resumed."""
    if overwrite:
        for name in (*rundir.ARTEFACTS, rundir.REPORT_HTML, rundir.REPORT_MD):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / PROJECT_NAME, ignore_errors=True)
        shutil.rmtree(run_dir / rundir.FIGURES, ignore_errors=True)  # no stale report survives
    else:
        rundir.check_resumable(run_dir, config)
        check_resumable_space(run_dir, config)


def search(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
           command: str = "", verbose: int = 1, report=None):
    """Load the data and run the search into `run_dir`, resuming an unfinished one.

    Nothing is written until the data has loaded and the directory has been checked, so bad
    input leaves no partial run directory. A distributed worker (see `fashion.distribute`)
    writes only its trials: the chief writes the run's files.

    Args:
        report: called with a line of progress after each finished trial.

    Returns:
        `(run_dir, splits, best_hyperparameters, tuning_seconds)`; a worker's best is None.
    """
    worker = distribute.is_worker()
    if worker and overwrite:
        raise ConfigError("a worker cannot --overwrite; pass it to the chief, which owns the run")
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    arrays, checksums = load_fashion_mnist(config.data_dir)
    splits = split_data(arrays, config.split, seed=config.seed, limit=config.limit)
    prepare_run_dir(run_dir, config, overwrite)
    keras.utils.set_random_seed(config.seed)
    if not worker:
        rundir.write_json(run_dir / rundir.CONFIG,
                          rundir.config_record(config, checksums, command))

    started = time.monotonic()
    tuner = build_tuner(config, run_dir)
    search_splits = sample_train(splits, config.search_images, config.seed)
    best_hp = run_search(tuner, search_splits, config, verbose=verbose, report=report)
    if best_hp is not None:
        rundir.write_json(run_dir / rundir.BEST_HYPERPARAMETERS, best_hp.values)
    return run_dir, splits, best_hp, time.monotonic() - started


def run(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
        command: str = "", verbose: int = 1, report=None) -> RunResult:
    """Search, retrain the best from scratch, evaluate, and save every artefact of the run."""
    if distribute.is_worker():
        raise ConfigError("`fashion run` cannot be a tuning worker; run `fashion tune --worker "
                          "ID` on the workers and `fashion run` (or `tune --chief`) on the chief")
    run_dir, splits, best_hp, tuning_seconds = search(config, run_dir, overwrite, command, verbose,
                                                      report)

    started = time.monotonic()
    model, history = train_best(best_hp, splits, config, verbose=verbose)
    training_seconds = time.monotonic() - started
    rundir.save_model(model, run_dir / rundir.MODEL)
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
    return RunResult(run_dir, metrics, best_hp.values)
