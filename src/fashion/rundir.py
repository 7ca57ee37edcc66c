"""The files a run directory holds, written atomically and read back with clear errors."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from fashion.config import RunConfig
from fashion.errors import ModelError, RunDirError

CONFIG = "config.json"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
MODEL = "model.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
ARTEFACTS = (CONFIG, BEST_HYPERPARAMETERS, MODEL, HISTORY, METRICS)
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES = "figures"
LIBRARIES = ("fashion", "keras", "keras-tuner", "tensorflow", "tensorflow-cpu", "jax", "torch",
             "numpy", "scikit-learn", "matplotlib", "pillow")


def library_versions() -> dict[str, str]:
    """Return the installed versions of the libraries a result depends on."""
    import keras

    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    # NamedTemporaryFile makes the file private (0600); give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(f.name, 0o666 & ~umask)
    os.replace(f.name, path)


def save_model(model, path: Path) -> None:
    """Save a Keras model via a temporary file, so a crash never leaves half a model."""
    partial = path.with_name(f".partial-{path.name}")
    model.save(partial)
    os.replace(partial, path)


def load_model(path: Path):
    """Load a `.keras` model with `safe_mode=True`, refusing anything else with a clear error.

    Safe mode refuses Python code hidden in the file (a `Lambda` layer's bytecode), so a model
    from elsewhere cannot run code on load. The model is not compiled: it is only used to predict.
    """
    import keras

    import fashion.layers  # noqa: F401  registers the layers fashion saves inside models

    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path} is not a .keras file; pass a model saved by `fashion run`")
    if not path.is_file():
        raise ModelError(f"{path} is missing; `fashion run` writes it")
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive; Keras calls others missing
        raise ModelError(f"{path} is not a Keras model (not a .keras zip archive); pass a model "
                         "saved by `fashion run`")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises ValueError, KeyError, OSError... for bad files.
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        if "safe_mode" in str(e):
            raise ModelError(f"{path} needs unsafe deserialisation ({reason[:80]}...); refused: "
                             "use a model saved by `fashion run`") from e
        raise ModelError(f"{path} is not a readable Keras model ({type(e).__name__}: {reason}); "
                         "pass a model saved by `fashion run`") from e
    _check_model_shapes(path, model)
    return model


def _check_model_shapes(path: Path, model) -> None:
    from fashion import NUM_CLASSES
    from fashion.spaces import INPUT_SHAPE

    inputs, outputs = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if not (isinstance(inputs, tuple) and tuple(inputs[1:]) == INPUT_SHAPE
            and isinstance(outputs, tuple) and tuple(outputs[1:]) == (NUM_CLASSES,)):
        raise ModelError(f"{path} maps {inputs} to {outputs}, not 28x28x1 images to "
                         f"{NUM_CLASSES} class probabilities; pass a Fashion-MNIST classifier")


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path, made_by: str = "fashion run"):
    """Read a JSON artefact, naming the command that makes it when it is missing or corrupt."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise RunDirError(f"{path} is missing; `{made_by}` writes it") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is corrupt ({e}); rerun `{made_by}` to write it again") from e


def config_record(config: RunConfig, checksums: dict[str, str], command: str) -> dict:
    """Return what `config.json` holds: the settings, versions, data checksums and command."""
    return {"config": config.to_dict(), "seed": config.seed, "command": command,
            "versions": library_versions(), "data_sha256": checksums}


def settings_differences(saved: dict, wanted: dict, ignore=("data_dir",)) -> list[str]:
    """Return 'name: saved -> wanted' for each setting that differs between two configs."""
    return [f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}"
            for k in sorted(set(saved) | set(wanted))
            if k not in ignore and saved.get(k) != wanted.get(k)]


def check_resumable(run_dir: Path, config: RunConfig) -> None:
    """Refuse to reuse a run directory that finished, or that was started with other settings."""
    if (run_dir / METRICS).exists():
        raise RunDirError(f"{run_dir} already holds a finished run; choose another --out, or "
                          "pass --overwrite to replace it")
    if (run_dir / CONFIG).exists():
        saved = read_json(run_dir / CONFIG)["config"]
        # The time budget may change: it spans resumes, so raising it is how a search that
        # ran out of time is continued.
        changed = settings_differences(saved, config.to_dict(), ignore=("data_dir", "time_budget"))
        if changed:
            raise RunDirError(f"{run_dir} was started with other settings ({'; '.join(changed)}); "
                              "rerun with the same options to resume, or pass --overwrite")


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """Write Keras's history as CSV, one row per epoch."""
    names = sorted(history)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *names])
    for epoch, values in enumerate(zip(*(history[n] for n in names), strict=True), start=1):
        writer.writerow([epoch, *values])
    write_atomic(path, out.getvalue())


def read_history(path: Path) -> dict[str, list[float]]:
    """Read `history.csv` back into metric name -> one value per epoch."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {name: [float(row[name]) for row in rows] for name in rows[0] if name != "epoch"}
    except FileNotFoundError as e:
        raise RunDirError(f"{path} is missing; `fashion run` writes it") from e
    except (IndexError, KeyError, ValueError, TypeError, csv.Error) as e:
        raise RunDirError(f"{path} is corrupt ({e}); rerun `fashion run` to write it again") from e
