"""Copy a finished run's model into the package as the shipped default, with its figures.

    python scripts/ship_model.py RUN_DIR

The optimizer state is dropped (it triples the file and prediction never needs it), then
`src/fashion/models/default.keras` and `default.json` (the run's metrics, config and best
hyperparameters) are written. The model is reloaded with safe_mode=True to check it.
"""

import json
import sys
from pathlib import Path

import keras

from fashion.inference.model_files import load_model, save_model
from fashion.runs import rundir
from fashion.storage import files

MODELS = Path(__file__).resolve().parents[1] / "src" / "fashion" / "models"


def main(run_dir: Path) -> None:
    trained = load_model(run_dir / rundir.MODEL)
    slim = keras.models.clone_model(trained)  # same architecture, uncompiled: no optimizer
    slim.set_weights(trained.get_weights())
    MODELS.mkdir(parents=True, exist_ok=True)
    save_model(slim, MODELS / "default.keras")
    record = {
        "trained_by": json.loads((run_dir / rundir.CONFIG).read_text())["command"],
        "best_hyperparameters": json.loads((run_dir / rundir.BEST_HYPERPARAMETERS).read_text()),
        "metrics": json.loads((run_dir / rundir.METRICS).read_text()),
    }
    files.write_json(MODELS / "default.json", record)
    reloaded = load_model(MODELS / "default.keras")
    size_mb = (MODELS / "default.keras").stat().st_size / 2**20
    print(f"shipped {reloaded.count_params()} parameters, {size_mb:.2f} MB, test accuracy "
          f"{record['metrics']['test']['accuracy']:.4f} -> {MODELS / 'default.keras'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
