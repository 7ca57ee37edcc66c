"""Retrain the best hyperparameters from scratch and keep the weights worth keeping."""

from __future__ import annotations

import time

import keras
import keras_tuner

from fashion.config import OBJECTIVES, RunConfig
from fashion.data import Splits, one_hot
from fashion.layers import with_flip_averaging
from fashion.spaces import build_hypermodel


def train_best(hyperparameters: keras_tuner.HyperParameters, splits: Splits, config: RunConfig,
               verbose: int = 1) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train a fresh model on the training split, validating on the validation split.

    With a patience, `EarlyStopping(restore_best_weights=True)` watches `final_monitor`
    (validation loss by default; validation accuracy, as the notebook did, with the seed
    preset) and keeps the weights of its best epoch. Without one, the last epoch's weights are
    kept (the vgg space's one-cycle schedule ends there), and `final_time_budget` ends that
    schedule on time. A space whose HyperModel `averages_flips` returns a model that averages
    each image and its mirror.

    Returns:
        The trained model, and Keras's history (metric name -> one value per epoch).
    """
    hypermodel = build_hypermodel(config.space, seed=config.seed)
    keras.backend.clear_session()
    model = hypermodel.build(hyperparameters)
    callbacks, fit_options = [], {}
    if config.final_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=config.final_monitor, mode=OBJECTIVES[config.final_monitor],
            patience=config.final_patience, restore_best_weights=True))
    if config.final_time_budget is not None:
        fit_options["deadline"] = time.monotonic() + 60 * config.final_time_budget
    history = hypermodel.fit(
        hyperparameters, model, splits.x_train, one_hot(splits.y_train),
        validation_data=(splits.x_val, one_hot(splits.y_val)),
        epochs=config.final_epochs, callbacks=callbacks, verbose=verbose, **fit_options)
    if getattr(hypermodel, "averages_flips", False):
        model = with_flip_averaging(model)
    return model, history.history
