"""Teach fashion from a folder of labelled photos: hold part out, train the photo space on the
rest (and some Fashion-MNIST), evaluate on what was held out, into one run directory."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras_tuner
import numpy as np

from fashion.errors import PhotoFolderError, RunDirError
from fashion.evaluation.evaluate import evaluate_model
from fashion.evaluation.report import write_report
from fashion.inference.calibrate import calibrate, write_calibration
from fashion.inference.model_files import load_model
from fashion.inference.photo_splits import load_photo_splits
from fashion.inference.photos import photos_from_dataset
from fashion.inference.predict import Predictor
from fashion.runs.rundir import RunDir
from fashion.spaces.registry import hypermodel_for
from fashion.storage.dataset import Splits, load_fashion_mnist, sample_train, scale_images
from fashion.storage.photo_folder import HOLDOUT_SEED, hold_out, read_photo_folder
from fashion.training.config import RunConfig, adapt_config
from fashion.training.device import detect_device
from fashion.workflow.pipeline import RunResult, default_run_dir, final_model

# Held-out photos below which no calibration is fitted: a threshold chosen on a handful of
# answers would withhold all of them or none by chance.
MIN_CALIBRATION_PHOTOS = 50


def adapt(photo_dir: str | Path, run_dir: str | Path | None = None, *, epochs: int | None = None,
          holdout: float | None = None, fashion_mnist: int | None = None,
          seed: int | None = None, data_dir: str | None = None, overwrite: bool = False,
          command: str = "", verbose: int = 1, on_progress=None) -> RunResult:
    """Train a photo model on a folder of labelled photos and evaluate it on photos held out.

    The folder has one sub-folder of photos per class, named by Fashion-MNIST class id (0-9)
    or label ("T-shirt_top", "trouser", ... "ankle boot"; case and punctuation ignored). A
    `groups.csv` (file,group) or a `labels.csv` with a `sender_id` column beside them keeps
    each group's photos on one side of the hold-out. Rerun the same call after a kill and it
    resumes; a finished run is refused (see its report with `fashion report`).

    Args:
        photo_dir: the folder of labelled photos.
        run_dir: where the run directory goes (default: runs/<timestamp>).
        epochs: epochs of training (default: `fashion.training.config.ADAPT`'s, 30).
        holdout: the share of the photos held out for evaluation (default 0.2).
        fashion_mnist: Fashion-MNIST training images mixed into training (default 3,000; 0
            needs no dataset), from `data_dir` or FASHION_MNIST_DIR as other commands.
        seed: the seed of the Fashion-MNIST sample and the training (default 42); the photos
            held out are the same whatever the seed, so runs of other seeds compare.

    Returns:
        As `fashion.run`: the run directory, the model, metrics.json's figures (the held-out
        photos are the "test" split), the fixed settings and no trials.

    Raises:
        FashionError: the folder cannot be learned from (one line naming what to fix), the
            options are absurd, or the run directory holds a finished or another run; all
            before anything is written.
    """
    config = adapt_config(Path(photo_dir).absolute(), final_epochs=epochs,
                          photo_holdout=holdout, fashion_mnist_images=fashion_mnist,
                          seed=seed, data_dir=data_dir)
    hold_out(read_photo_folder(config.photo_dir), config.photo_holdout, HOLDOUT_SEED)  # checks
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    out = RunDir(run_dir)
    out.prepare(config, overwrite)
    _say(on_progress, f"[fashion] reading the photos of {config.photo_dir}")
    photos = load_photo_splits(config)
    splits = _with_fashion_mnist(photos, config, on_progress)
    if overwrite:
        out.clear()
    out.remove_leftovers()
    out.write_record(config, splits.data_sha256, command, detect_device().to_dict())
    hyperparameters = keras_tuner.HyperParameters()
    hypermodel_for(config).declare_hyperparameters(hyperparameters)
    out.write_best_hyperparameters(hyperparameters.values)
    model, history, training_seconds = final_model(out, hyperparameters, splits, config,
                                                   verbose, on_progress)
    if out.has_metrics():
        metrics = out.metrics()
    else:
        _say(on_progress, "[fashion] evaluating on the held-out photos")
        held_out = evaluate_model(model, photos.x_test, photos.y_test, "held-out photos")
        metrics = {
            "split": "photos",
            "sizes": {"train": len(photos.y_train), "val": len(photos.y_val),
                      "test": len(photos.y_test),
                      "fashion_mnist": len(splits.y_train) - len(photos.y_train)},
            "parameters": int(model.count_params()),
            "epochs_trained": len(next(iter(history.values()))),
            "tuning_seconds": 0.0,
            "training_seconds": round(training_seconds, 1),
            # The held-out photos are watched in training and chosen on by nothing (no early
            # stopping): they are the validation and the test split alike.
            "validation": {**held_out, "split": "validation"},
            "test": held_out,
        }
        out.write_metrics(metrics)
    shutil.rmtree(out.training_backup, ignore_errors=True)
    if len(photos.y_test) >= MIN_CALIBRATION_PHOTOS:
        calibration, _, path = calibrate_photo_model(out.model_path, model, photos)
        _say(on_progress, f"[fashion] calibrated on the held-out photos: temperature "
             f"{calibration.temperature:.3f}, \"not sure\" below {calibration.threshold:.3f} "
             f"-> {path}")
    else:
        _say(on_progress, f"[fashion] not calibrated: {len(photos.y_test)} photos held out, "
             f"fewer than the {MIN_CALIBRATION_PHOTOS} a threshold needs; the model answers as "
             "it says, never \"not sure\"")
    _say(on_progress, "[fashion] writing the report")
    write_report(run_dir, model=model, splits=photos)
    return RunResult(run_dir, model, metrics, hyperparameters.values, [])


def calibrate_photo_model(model_path: str | Path, model=None, photos: Splits | None = None):
    """Fit a photo model's temperature and "not sure" threshold on the photos its run held out
    (none of them trained on; calibration changes no answer's order, but the run's figures of
    "not sure" are then measured on the photos it was fitted on) and save them beside it.

    `model_path` is the `model.keras` of a `fashion adapt` run directory, whose config names
    the photo folder and its hold-out. Returns the calibration, its record and the file written.

    Raises:
        RunDirError: the model is not inside a `fashion adapt` run directory.
        PhotoFolderError: the run's photo folder is gone or changed shape, or too few photos
            were held out to fit a threshold on.
    """
    model_path, run = Path(model_path), RunDir(Path(model_path).parent)
    if not run.has_record() or not run.config().photo_dir:
        raise RunDirError(f"{model_path} is not in a `fashion adapt` run directory (its "
                          "config.json names the photos); a photo model is calibrated on the "
                          "photos its run held out: pass the model.keras of that run")
    config = run.config()
    photos = photos if photos is not None else load_photo_splits(config)
    if len(photos.y_test) < MIN_CALIBRATION_PHOTOS:
        raise PhotoFolderError(f"{run.path} held out {len(photos.y_test)} photos, fewer than the "
                               f"{MIN_CALIBRATION_PHOTOS} a calibration needs; adapt again with "
                               "more photos or a larger --holdout")
    model = model if model is not None else load_model(model_path)
    calibration, record = calibrate(Predictor(model).probabilities(photos.x_test),
                                    photos.y_test)
    return calibration, record, write_calibration(model_path, calibration, record)


def _with_fashion_mnist(photos: Splits, config: RunConfig, on_progress) -> Splits:
    """The photo splits with `config.fashion_mnist_images` training images of Fashion-MNIST
    (a stratified sample) added to the training photos, made photos themselves."""
    if not config.fashion_mnist_images:
        return photos
    _say(on_progress, f"[fashion] adding {config.fashion_mnist_images:,} Fashion-MNIST images")
    ((x_train, y_train), _), checksums = load_fashion_mnist(config.data_dir)
    dataset = sample_train(Splits("train", x_train, y_train, *[np.empty(0)] * 4),
                           config.fashion_mnist_images, config.seed)
    return dataclasses.replace(
        photos,
        x_train=np.concatenate([photos.x_train, photos_from_dataset(scale_images(
            dataset.x_train))]),
        y_train=np.concatenate([photos.y_train, dataset.y_train.astype(np.int64)]),
        data_sha256={**photos.data_sha256, **checksums})


def _say(on_progress, line: str) -> None:
    if on_progress:
        on_progress(line)

