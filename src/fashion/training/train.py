"""Retrain the best hyperparameters from scratch and keep the weights worth keeping."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
import zlib
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from fashion.errors import RunDirError
from fashion.spaces.layers import with_flip_averaging
from fashion.spaces.registry import hypermodel_for
from fashion.storage import files
from fashion.storage.dataset import Splits, one_hot
from fashion.training.config import OBJECTIVES, RunConfig

# TensorBoard's logs of a run: search/<trial>/... and final/.
LOGS = "logs"


class ResumableTraining(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore`, plus what it leaves out, so a killed training continues from
    its last finished epoch as if it had never stopped, whatever the instant of the kill.

    Keras backs up the weights, the optimizer and the epoch in two files written one after the
    other, so a kill between them would resume an epoch's weights as if that epoch were still to
    train. Here Keras's folder is copied aside before each of its backups and `progress.json`
    says when one is under way: a training killed during a backup resumes from the copy. This
    adds the history so far (written to `history_path` an epoch at a time, so it can be watched
    while training runs) and the seconds spent. The random generators the weights leave out
    (dropout's, in-graph augmentation's) restart each epoch from a state that is a function of
    (`seed`, epoch), so none of their state can be lost. The backup folder is kept until
    `pipeline` has saved the model.
    """

    def __init__(self, backup_dir: Path, history_path: Path, seed: int = 0):
        self.keras_backup = Path(backup_dir) / "keras"
        self.previous_backup = Path(backup_dir) / "keras-previous"
        super().__init__(str(self.keras_backup), delete_checkpoint=False)
        self.progress_path = Path(backup_dir) / "progress.json"
        self.history_path, self.seed = Path(history_path), seed
        self.history: dict[str, list[float]] = {}
        self.seconds_before, self.started = self.seconds_spent(backup_dir), time.monotonic()

    @staticmethod
    def seconds_spent(backup_dir: Path) -> float:
        """Training seconds of the earlier runs of an interrupted training (0 for a new one)."""
        try:
            return float(json.loads((Path(backup_dir) / "progress.json").read_text())["seconds"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0.0

    def on_train_begin(self, logs=None):
        try:
            progress = json.loads(self.progress_path.read_text())
        except (FileNotFoundError, ValueError):
            progress = {}
        if progress.get("backing_up"):  # killed during Keras's backup: take the copy before it
            shutil.rmtree(self.keras_backup, ignore_errors=True)
            if self.previous_backup.is_dir():
                shutil.copytree(self.previous_backup, self.keras_backup)
            files.write_json(self.progress_path, {**progress, "backing_up": False})
        super().on_train_begin(logs)
        try:
            self.history = files.read_history(self.history_path)
        except RunDirError:
            return  # a new training, or a kill before its first epoch ended

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        for index, variable in enumerate(_seed_states(self.model)):
            start = zlib.crc32(f"{self.seed}/{epoch}/{index}".encode())
            variable.assign(np.array([start, 0], dtype=variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        # By index: a row written before a kill that Keras's backup missed is trained again.
        for name, value in (logs or {}).items():
            self.history[name] = [*self.history.get(name, [])[:epoch], float(value)]
        files.write_history(self.history_path, self.history)
        if self.keras_backup.is_dir():  # the last whole backup, set aside whole or not at all
            staging = self.previous_backup.with_name("keras-previous.staging")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(self.keras_backup, staging)
            shutil.rmtree(self.previous_backup, ignore_errors=True)
            os.replace(staging, self.previous_backup)
        self._write_progress(epochs=epoch, backing_up=True)
        super().on_epoch_end(epoch, logs)
        self._write_progress(epochs=epoch + 1, backing_up=False)

    def _write_progress(self, epochs: int, backing_up: bool) -> None:
        seconds = self.seconds_before + time.monotonic() - self.started
        files.write_json(self.progress_path, {"epochs": epochs, "seconds": round(seconds, 1),
                                              "backing_up": backing_up})


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's `EarlyStopping`, its state (the best score, its epoch and weights, the epochs
    waited) kept beside the training's backup, so a resumed training stops where, and keeps
    the weights that, an uninterrupted one would."""

    def __init__(self, backup_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.state_path = Path(backup_dir) / "early_stopping.json"
        self.weights_path = Path(backup_dir) / "early_stopping_best.npz"

    @classmethod
    def stopped_weights(cls, backup_dir: Path) -> list | None:
        """The best weights of a training that had already stopped early, else None."""
        stopping = cls(backup_dir)
        stopping._load()
        return stopping.best_weights if stopping.stopped_epoch else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._load()

    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text())
            with np.load(self.weights_path) as saved:
                weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        except (FileNotFoundError, ValueError, KeyError, TypeError, OSError):
            return
        self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
        self.stopped_epoch, self.best_weights = state["stopped_epoch"], weights or None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_weights is not None:
            partial = self.weights_path.with_name(f".{self.weights_path.name}.tmp")
            with open(partial, "wb") as f:
                np.savez(f, *self.best_weights)
            os.replace(partial, self.weights_path)
        best = None if self.best is None else float(self.best)
        files.write_json(self.state_path, {"wait": self.wait, "best": best,
                                            "best_epoch": self.best_epoch,
                                            "stopped_epoch": self.stopped_epoch})


def _seed_states(model) -> list:
    """The state variables of the model's random generators (dropout's), in a fixed order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def train_best(hyperparameters: keras_tuner.HyperParameters, splits: Splits, config: RunConfig,
               verbose: int = 1, backup_dir: Path | None = None, history_path: Path | None = None,
               log_dir: Path | None = None) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train a fresh model on the training split, validating on the validation split, or on
    both without validating where `config.fold_validation` says so.

    The model is built from the run's seed, so the same config trains the same model whatever
    ran before in the process. With a patience, `EarlyStopping(restore_best_weights=True)`
    watches `final_monitor` (validation loss by default; validation accuracy, as the notebook
    did, with the seed preset) and keeps the weights of its best epoch. Without one, the last
    epoch's weights are kept (the vgg space's one-cycle schedule ends there), and
    `final_time_budget` ends that schedule on time. A space whose HyperModel `averages_flips`
    returns a model that averages each image and its mirror.

    Args:
        backup_dir: where to back the training up each epoch, and resume it from; with it,
            `history_path` receives the history an epoch at a time.
        log_dir: where TensorBoard's logs of the training go.

    Returns:
        The trained model, and the history (metric name -> one value per epoch).
    """
    hypermodel = hypermodel_for(config)
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    model = hypermodel.build(hyperparameters)
    callbacks, fit_options, resumable = [], {}, None
    if backup_dir is not None:
        resumable = ResumableTraining(backup_dir, history_path, seed=config.seed)
        callbacks.append(resumable)
        stopped = ResumableEarlyStopping.stopped_weights(backup_dir)
        if stopped is not None:  # killed after it stopped early, before the model was saved
            model.set_weights(stopped)
            return _finished(model, hypermodel), files.read_history(history_path)
    if config.final_patience is not None:
        stopping_options = dict(monitor=config.final_monitor,
                                mode=OBJECTIVES[config.final_monitor],
                                patience=config.final_patience, restore_best_weights=True)
        callbacks.append(ResumableEarlyStopping(backup_dir, **stopping_options)
                         if backup_dir is not None else
                         keras.callbacks.EarlyStopping(**stopping_options))
    if log_dir is not None:
        callbacks += tensorboard_logs(log_dir)
    if config.final_time_budget is not None:
        # A resumed training has the budget's remainder.
        spent = resumable.seconds_before if resumable else 0.0
        fit_options["deadline"] = time.monotonic() + 60 * config.final_time_budget - spent
    x, y, validation = splits.x_train, splits.y_train, (splits.x_val, one_hot(splits.y_val))
    if config.fold_validation:
        x, y = np.concatenate([x, splits.x_val]), np.concatenate([y, splits.y_val])
        validation = None
    history = hypermodel.fit(hyperparameters, model, x, one_hot(y), validation_data=validation,
                             epochs=config.final_epochs, callbacks=callbacks, verbose=verbose,
                             **fit_options)
    return _finished(model, hypermodel), resumable.history if resumable else history.history


def _finished(model, hypermodel):
    """The model as saved: averaging each image and its mirror where the space says so."""
    return with_flip_averaging(model) if hypermodel.averages_flips else model


def tensorboard_logs(log_dir: Path) -> list[keras.callbacks.Callback]:
    """A TensorBoard callback logging to `log_dir` each epoch, or none without TensorBoard.

    Keras's callback writes through TensorFlow's summaries, so it needs TensorFlow installed
    (any backend). Given one, KerasTuner logs each trial in a folder of its own with its
    hyperparameters, which TensorBoard's HParams view compares (on the TensorFlow backend).
    """
    if not all(importlib.util.find_spec(name) for name in ("tensorflow", "tensorboard")):
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)]
