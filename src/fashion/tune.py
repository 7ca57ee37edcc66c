"""Search a space with one of KerasTuner's tuners: budgets, resume, progress, chief and workers."""

from __future__ import annotations

import contextlib
import time
import zlib
from pathlib import Path

import keras
import keras_tuner
from keras_tuner.src.engine.trial import TrialStatus

from fashion import distribute, resume
from fashion.config import RunConfig
from fashion.data import Splits, one_hot
from fashion.progress import follow_trials, progress_line
from fashion.spaces import build_hypermodel

PROJECT_NAME = "tuning"


def trial_seed(seed: int, trial_id: str) -> int:
    """Return the seed of one trial, derived from the run's seed and the trial's id."""
    return zlib.crc32(f"{seed}/{trial_id}".encode())


# The names `tf.custom_gradient` registers its gradient functions under, "CustomGradient-<uid>".
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


@contextlib.contextmanager
def releasing_traced_graphs():
    """Let the graphs traced inside the block be freed once the models trained in it are dropped.

    Keras's TensorFlow optimizer sums the gradients through `all_reduce`, even with no
    distribution strategy, and that goes through `tf.custom_gradient`, which in a traced train
    step registers a gradient function in TensorFlow's global gradient registry and never removes
    it. The function's closure holds the step's tensors, so every trained model's graphs (46
    FuncGraphs for the default CNN, 20 to 30 MiB) outlived `clear_session` (tensorflow/tensorflow
    #97697). An entry is read only while a gradient of its graph is traced, which for a trial's
    train step happens inside `fit`: once the trial is over, nothing will read it again.
    """
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import ops

    registry = ops.gradient_registry._registry
    before = set(registry)
    try:
        yield
    finally:
        # Only the per-trace entries: a module imported meanwhile may have registered op gradients.
        for name in set(registry) - before:
            if name.startswith(CUSTOM_GRADIENT_PREFIX):
                del registry[name]


class _FashionTrials:
    """What `fashion` adds to each of KerasTuner's tuners.

    A seed per trial, so a trial trains the same whether it runs first, after a resume or on
    another worker; atomic project files; the chief/worker fixes of `fashion.distribute`; and
    each trial's traced graphs released after it, so memory stays flat over a long search.
    """

    def __init__(self, *args, base_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.base_seed = base_seed
        self.report = None  # set by `run_search`; the chief reports dropped workers through it
        self._heartbeat = None
        if self._is_worker():
            distribute.pause_when_idle(self.oracle)

    def run_trial(self, trial, *args, **kwargs):
        keras.utils.set_random_seed(trial_seed(self.base_seed, trial.trial_id))
        with releasing_traced_graphs():
            return super().run_trial(trial, *args, **kwargs)

    def search(self, *fit_args, **fit_kwargs):
        if not distribute.is_chief():
            return super().search(*fit_args, **fit_kwargs)
        # KerasTuner's chief branch of `search`, with a server that copes with dead workers.
        self.oracle.verbose = fit_kwargs.get("verbose", 1)
        self.save()
        distribute.serve_oracle(self.oracle, report=self.report)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        if self._is_worker():
            self._heartbeat = distribute.Heartbeat(self.oracle, trial.trial_id)

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        super().on_trial_end(trial)


class Hyperband(_FashionTrials, keras_tuner.Hyperband):
    pass


class RandomSearch(_FashionTrials, keras_tuner.RandomSearch):
    pass


class BayesianOptimization(_FashionTrials, keras_tuner.BayesianOptimization):
    pass


def initial_points(max_trials: int) -> int:
    """Random trials before the Gaussian process takes over: a third of the trials, at least 2.

    KerasTuner's default, three times the number of hyperparameters (about 36 for the CNN),
    would make any search of fewer trials a plain random search.
    """
    return max(2, max_trials // 3)


def build_tuner(config: RunConfig, run_dir: Path, overwrite: bool = False) -> keras_tuner.Tuner:
    """Return the configured KerasTuner tuner, its project kept in `run_dir/tuning`.

    An existing project in the same folder is reloaded, so a rerun resumes the search; in a
    worker (`KERASTUNER_TUNER_ID` set, not a chief) the tuner asks the chief for its trials.
    """
    resume.write_project_files_atomically()
    if not distribute.is_worker():
        resume.adopt_project(Path(run_dir) / PROJECT_NAME, distribute.tuner_id())
    common = dict(
        hypermodel=build_hypermodel(config.space, seed=config.seed),
        objective=keras_tuner.Objective(config.objective, config.objective_direction),
        executions_per_trial=config.executions_per_trial,
        seed=config.seed,
        base_seed=config.seed,
        directory=str(run_dir),
        project_name=PROJECT_NAME,
        overwrite=overwrite,
    )
    if config.tuner == "hyperband":
        tuner = Hyperband(max_epochs=config.max_epochs, factor=config.factor, **common)
    elif config.tuner == "random":
        tuner = RandomSearch(max_trials=config.max_trials, **common)
    else:
        tuner = BayesianOptimization(max_trials=config.max_trials,
                                     num_initial_points=initial_points(config.max_trials),
                                     **common)
    if not distribute.is_worker():
        resume.forget_finished_retries(tuner.oracle)
    return tuner


def check_resumable_space(run_dir: Path, config: RunConfig) -> None:
    """Refuse to resume a search whose saved search space differs from the current one."""
    resume.check_same_space(Path(run_dir), PROJECT_NAME,
                            build_hypermodel(config.space, seed=config.seed))


def stop_new_trials_after(oracle: keras_tuner.Oracle, deadline: float) -> None:
    """Make the oracle answer STOPPED once `time.monotonic()` passes `deadline`.

    Running trials finish; the search then ends as it does when the space is exhausted, so the
    best trial so far is kept. At least one trial runs, so there always is a best. Done in the
    oracle so a distributed chief enforces it for all.
    """
    populate_space = oracle.populate_space

    def populate_space_within_budget(trial_id):
        if oracle.trials and time.monotonic() >= deadline:
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


def _watch(tuner, config: RunConfig, report) -> None:
    """Enforce the time budget and report each finished trial, where the oracle lives."""
    clock = resume.SearchClock.start(Path(tuner.project_dir))
    if config.time_budget is not None:
        stop_new_trials_after(tuner.oracle, clock.deadline(config.time_budget))

    def on_trial_end(oracle, trial):
        clock.save()
        if report is not None:
            left = None if config.time_budget is None else \
                60 * config.time_budget - clock.elapsed()
            report(progress_line(oracle, trial, clock.elapsed(), left))

    follow_trials(tuner.oracle, on_trial_end)


def run_search(tuner: keras_tuner.Tuner, splits: Splits, config: RunConfig, verbose: int = 1,
               report=None) -> keras_tuner.HyperParameters | None:
    """Search on the training split, scoring on validation; return the best hyperparameters.

    `report`, when given, receives a line per finished trial. A worker returns None: its chief
    holds the results.
    """
    tuner.report = report
    worker = distribute.is_worker()
    if not worker:
        _watch(tuner, config, report)
    if verbose:
        tuner.search_space_summary()
    tuner.search(
        splits.x_train, one_hot(splits.y_train),
        validation_data=(splits.x_val, one_hot(splits.y_val)),
        epochs=config.max_epochs,
        callbacks=search_callbacks(config),
        verbose=verbose,
    )
    if worker:
        return None
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise RuntimeError("the search finished no trial; see the trial messages above")
    return best[0]
