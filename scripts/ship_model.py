"""Copy a finished run's model into the package as a shipped model, with its figures.

    python scripts/ship_model.py RUN_DIR                # a `fashion run`: default.keras
    python scripts/ship_model.py RUN_DIR --name photo   # a `fashion adapt`: photo.keras

The optimizer state is dropped (it triples the file and prediction never needs it), then
`src/fashion/models/NAME.keras` and `NAME.json` (the run's command, metrics, config and best
hyperparameters) are written, and the run's calibration, if it has one, as
`NAME.calibration.json`. The model is reloaded with safe_mode=True to check it. The default
predictor routes phone photos to `photo.keras` when it is there.
"""

import argparse
import json
import shutil
from pathlib import Path

import keras

from fashion.inference.calibrate import calibration_path
from fashion.inference.model_files import load_model, save_model
from fashion.runs import rundir
from fashion.storage import files

MODELS = Path(__file__).resolve().parents[1] / "src" / "fashion" / "models"


def main(run_dir: Path, name: str) -> None:
    trained = load_model(run_dir / rundir.MODEL)
    slim = keras.models.clone_model(trained)  # same architecture, uncompiled: no optimizer
    slim.set_weights(trained.get_weights())
    MODELS.mkdir(parents=True, exist_ok=True)
    shipped = MODELS / f"{name}.keras"
    save_model(slim, shipped)
    record = {
        "trained_by": json.loads((run_dir / rundir.CONFIG).read_text())["command"],
        "best_hyperparameters": json.loads((run_dir / rundir.BEST_HYPERPARAMETERS).read_text()),
        "metrics": json.loads((run_dir / rundir.METRICS).read_text()),
    }
    files.write_json(MODELS / f"{name}.json", record)
    if calibration_path(run_dir / rundir.MODEL).is_file():
        shutil.copyfile(calibration_path(run_dir / rundir.MODEL), calibration_path(shipped))
    reloaded = load_model(shipped)
    size_mb = shipped.stat().st_size / 2**20
    print(f"shipped {reloaded.count_params()} parameters, {size_mb:.2f} MB, test accuracy "
          f"{record['metrics']['test']['accuracy']:.4f} -> {shipped}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", choices=("default", "photo"), default="default")
    args = parser.parse_args()
    main(args.run_dir, args.name)
