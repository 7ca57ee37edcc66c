"""The main job: data -> tune -> retrain the best -> evaluate, into one run directory."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner

from fashion.errors import ConfigError
from fashion.evaluation.evaluate import evaluate_model
from fashion.evaluation.report import write_report
from fashion.inference.model_files import load_model, save_model
from fashion.runs.plan import PLANNED_SETTINGS, plan_run
from fashion.runs.rundir import RunDir
from fashion.spaces.registry import hypermodel_for
from fashion.storage import files
from fashion.storage.dataset import Splits, load_splits, sample_train
from fashion.training.config import RunConfig
from fashion.training.device import detect_device
from fashion.training.train import ResumableTraining, train_best
from fashion.tuning import project
from fashion.tuning.distribute import STANDALONE, Role
from fashion.tuning.tune import build_tuner, run_search


@dataclass(frozen=True)
class RunResult:
    """What a run made: its folder, the trained model, its metrics and the search's trials."""

    run_dir: Path
    model: keras.Model
    metrics: dict  # as metrics.json: "validation" and "test" from `evaluate_model`, timings
    best_hyperparameters: dict
    trials: list[dict]  # as `fashion.tuning.trial_records.load_trials`


@dataclass(frozen=True)
class SearchResult:
    """What a search left: its folder, the config it ran (a budget's plan filled in), the data,
    the best hyperparameters (None on a worker) and the seconds spent over every run of it."""

    run_dir: Path
    config: RunConfig
    splits: Splits
    best_hyperparameters: keras_tuner.HyperParameters | None
    tuning_seconds: float


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def search(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
           command: str = "", verbose: int = 1, on_progress=None,
           role: Role = STANDALONE) -> SearchResult:
    """Load the data and run the search into `run_dir`, resuming an unfinished one.

    The directory is checked before the data loads, and nothing is written or removed until
    the data has loaded, so bad input leaves no partial run directory and loses nothing. A
    distributed worker (see `fashion.tuning.distribute`) writes only its trials: the chief writes
    the run's files.

    Args:
        on_progress: called with a line of progress after each finished trial, and when a
            chief drops a silent worker.
        role: standalone (the default), or this process's role in a distributed search.

    With a budget, the device's speed is measured once the data has loaded and the plan is
    printed (`fashion.runs.plan`); a resumed run reuses the plan it saved.
    """
    if role.is_worker and overwrite:
        raise ConfigError("a worker cannot --overwrite; pass it to the chief, which owns the run")
    if role.is_distributed and config.budget is not None:
        raise ConfigError("--budget plans a run on one machine; a distributed search takes "
                          "--no-budget with --time-budget (and --network) on chief and workers")
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    out = RunDir(run_dir)
    out.prepare(config, overwrite, planned=PLANNED_SETTINGS if config.budget is not None else ())
    if on_progress:
        on_progress("[fashion] loading and checking Fashion-MNIST")
    splits = load_splits(config)
    config, plan = plan_run(config, run_dir, overwrite, on_progress)
    if overwrite:
        out.clear()
    else:
        project.check_same_space(run_dir, hypermodel_for(config))
    if not role.is_worker:
        out.remove_leftovers()
        out.write_record(config, splits.data_sha256, command,
                         plan.device if plan else detect_device().to_dict(), plan)
    keras.utils.set_random_seed(config.seed)
    tuner = build_tuner(config, run_dir, role=role, on_message=on_progress)
    search_splits = sample_train(splits, config.search_images, config.seed)
    best_hp = run_search(tuner, search_splits, config, run_dir, verbose=verbose,
                         on_progress=on_progress)
    if best_hp is not None:
        out.write_best_hyperparameters(best_hp.values)
    return SearchResult(run_dir, config, splits, best_hp,
                        project.SearchClock.start(run_dir).spent_before)


def run(config: RunConfig, run_dir: Path | None = None, overwrite: bool = False,
        command: str = "", verbose: int = 1, on_progress=None,
        role: Role = STANDALONE) -> RunResult:
    """Search, retrain the best from scratch, evaluate, and save every artefact of the run.

    Every phase resumes: rerun the same call after a kill, a crash or a full disk and the
    search continues where it stopped, the final training from its last finished epoch, and
    evaluation and the report are redone from the saved files.
    """
    if role.is_worker:
        raise ConfigError("`fashion run` cannot be a tuning worker; run `fashion tune --worker "
                          "ID` on the workers and `fashion run` (or `tune --chief`) on the chief")
    searched = search(config, run_dir, overwrite, command, verbose, on_progress, role)
    run_dir, config, splits, best_hp = (searched.run_dir, searched.config, searched.splits,
                                        searched.best_hyperparameters)
    out = RunDir(run_dir)
    model, history, training_seconds = final_model(out, best_hp, splits, config, verbose,
                                                    on_progress)
    if out.has_metrics():
        metrics = out.metrics()
    else:
        if on_progress:
            on_progress("[fashion] evaluating on the validation and test splits")
        metrics = {
            "split": splits.name,
            "sizes": splits.sizes(),
            "parameters": int(model.count_params()),
            "epochs_trained": len(next(iter(history.values()))),
            "tuning_seconds": round(searched.tuning_seconds, 1),
            "training_seconds": round(training_seconds, 1),
            "validation": evaluate_model(model, splits.x_val, splits.y_val, "validation"),
            # Folded into the final training: its figures are then of trained-on images.
            "validation_trained_on": config.fold_validation,
            "test": evaluate_model(model, splits.x_test, splits.y_test, "test"),
        }
        out.write_metrics(metrics)
    shutil.rmtree(out.training_backup, ignore_errors=True)
    if on_progress:
        on_progress("[fashion] writing the report")
    write_report(run_dir, model=model, splits=splits)
    return RunResult(run_dir, model, metrics, best_hp.values, out.trials())


def final_model(out: RunDir, best_hp, splits, config: RunConfig, verbose: int, on_progress):
    """Train the final model, continuing an interrupted training, or load the one saved.

    Returns the model, its history and the seconds its training took over every run.
    """
    backup = out.training_backup
    if out.has_model():  # trained before a kill in evaluation or the report
        return load_model(out.model_path), out.history(), ResumableTraining.seconds_spent(backup)
    files.check_free_space(out.path)
    if on_progress:
        resumed = ResumableTraining.seconds_spent(backup)
        on_progress("[fashion] final training" + (f", resumed after {resumed:.0f} s"
                                                   if resumed else ""))
    model, history = train_best(best_hp, splits, config, verbose=verbose, backup_dir=backup,
                                history_path=out.history_path, log_dir=out.logs / "final")
    seconds = ResumableTraining.seconds_spent(backup)
    save_model(model, out.model_path)
    return model, history, seconds
