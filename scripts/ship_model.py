"""Copy a finished run's model into the package as a shipped model, with its figures.

    python scripts/ship_model.py RUN_DIR                         # `fashion run`: default.keras
    python scripts/ship_model.py RUN_DIR [RUN_DIR...] --name photo  # `fashion adapt`: photo.keras

The optimizer state is dropped (it triples the file and prediction never needs it), then
`src/fashion/models/NAME.keras` and `NAME.json` (the runs' commands, metrics and best
hyperparameters) are written, with the calibration as `NAME.calibration.json`. Several
`fashion adapt` runs of one photo folder (other seeds; the same photos held out) ship as one
model that averages their answers, scored and calibrated again on the held-out photos. The
model is reloaded with safe_mode=True to check it. The default predictor routes phone photos
to `photo.keras` when it is there.
"""

import argparse
import shutil
from pathlib import Path

import keras

from fashion.evaluation.evaluate import evaluate_model
from fashion.inference.calibrate import calibrate, calibration_path, write_calibration
from fashion.inference.model_files import load_model, save_model
from fashion.inference.photo_splits import load_photo_splits
from fashion.inference.predict import Predictor
from fashion.runs import rundir
from fashion.spaces.layers import average_of
from fashion.storage import files
from fashion.storage.classes import INPUT_SHAPE, PHOTO_SHAPE

MODELS = Path(__file__).resolve().parents[1] / "src" / "fashion" / "models"


def slim(trained: keras.Model) -> keras.Model:
    """The same architecture and weights, uncompiled: no optimizer state."""
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    return model


def main(run_dirs: list[Path], name: str) -> None:
    runs = [rundir.RunDir(path) for path in run_dirs]
    record = {
        "trained_by": [run.record()["command"] for run in runs],
        "best_hyperparameters": runs[0].best_hyperparameters(),
        "metrics": runs[0].metrics(),
    }
    shipped = MODELS / f"{name}.keras"
    models = [load_model(run.model_path) for run in runs]
    wanted = PHOTO_SHAPE if name == "photo" else INPUT_SHAPE
    if any(tuple(model.input_shape[1:]) != wanted for model in models):
        raise SystemExit(f"{name}.keras takes {wanted} images: ship `fashion adapt` runs as "
                         "photo, others as default")
    MODELS.mkdir(parents=True, exist_ok=True)
    calibration_path(shipped).unlink(missing_ok=True)  # never the last model's
    if len(runs) == 1:
        record["trained_by"] = record["trained_by"][0]
        save_model(slim(models[0]), shipped)
        if calibration_path(runs[0].model_path).is_file():
            shutil.copyfile(calibration_path(runs[0].model_path), calibration_path(shipped))
        else:
            print(f"{runs[0].path} has no calibration: run `fashion calibrate {shipped}`")
    else:
        configs = [run.config() for run in runs]
        if not configs[0].photo_dir or any((c.photo_dir, c.photo_holdout) != (
                configs[0].photo_dir, configs[0].photo_holdout) for c in configs):
            raise SystemExit("only `fashion adapt` runs of one photo folder and hold-out average")
        model = average_of(models, name)
        save_model(model, shipped)
        photos = load_photo_splits(configs[0])
        record["metrics"] = {
            **record["metrics"],
            "test": evaluate_model(model, photos.x_test, photos.y_test, "held-out photos"),
            "members_test_accuracy": [run.metrics()["test"]["accuracy"] for run in runs]}
        record["metrics"]["validation"] = {**record["metrics"]["test"], "split": "validation"}
        calibration, fitted = calibrate(Predictor(model).probabilities(photos.x_test),
                                        photos.y_test)
        write_calibration(shipped, calibration, fitted)
    files.write_json(MODELS / f"{name}.json", record)
    reloaded = load_model(shipped)
    size_mb = shipped.stat().st_size / 2**20
    print(f"shipped {reloaded.count_params()} parameters, {size_mb:.2f} MB, test accuracy "
          f"{record['metrics']['test']['accuracy']:.4f} -> {shipped}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--name", choices=("default", "photo"), default="default")
    args = parser.parse_args()
    main(args.run_dirs, args.name)
