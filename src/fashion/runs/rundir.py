"""The run directory: the name of every file in it, and every check made before a run
creates, overwrites or resumes one."""

from __future__ import annotations

import platform
import secrets
import shutil
from importlib import metadata
from pathlib import Path

from fashion.errors import RunDirError
from fashion.storage.files import check_free_space, read_json
from fashion.training.config import RunConfig
from fashion.training.train import LOGS
from fashion.tuning.project import TUNING

CONFIG = "config.json"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
MODEL = "model.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
ARTEFACTS = (CONFIG, BEST_HYPERPARAMETERS, MODEL, HISTORY, METRICS)
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
# The report of a run still running or interrupted: the trials and curves so far.
PARTIAL_REPORT_HTML = "report-partial.html"
PARTIAL_REPORT_MD = "report-partial.md"
FIGURES = "figures"
# KerasTuner's project folder, and the files in it that fashion reads or adds.
# The final training's backup, kept until the model it trains is saved.
TRAINING_BACKUP = "training-backup"
# Free space below which no trial or training starts: h5py, which writes Keras's checkpoints,
# crashes the whole process (a segmentation fault) when the disk fills mid-write.
# A refusal to resume names this many differences of the search space, then counts the rest.
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


def config_record(config: RunConfig, checksums: dict[str, str], command: str,
                  device: dict, plan=None) -> dict:
    """Return what `config.json` holds: the settings, versions, data checksums, command, the
    device (`fashion.training.device.Device`) and a budget's plan (`fashion.runs.plan.Plan`)."""
    return {"config": config.to_dict(), "seed": config.seed, "command": command,
            "versions": library_versions(), "data_sha256": checksums, "device": device,
            "plan": plan and plan.to_dict()}


def settings_differences(saved: dict, wanted: dict, ignore=("data_dir",)) -> list[str]:
    """Return 'name: saved -> wanted' for each setting that differs between two configs."""
    return [f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}"
            for k in sorted(set(saved) | set(wanted))
            if k not in ignore and saved.get(k) != wanted.get(k)]


def is_finished(run_dir: Path) -> bool:
    """Whether every phase of a run ended: the report is written last."""
    return (Path(run_dir) / METRICS).exists() and (Path(run_dir) / REPORT_HTML).exists()


def check_writable(run_dir: Path) -> None:
    """Refuse an output folder that cannot be written, before any work is done.

    Raises:
        RunDirError: naming the folder (or the nearest existing one above it) and the reason.
    """
    folder = Path(run_dir).absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise RunDirError(f"{folder} is a file, not a folder; choose another --out")
    try:
        probe = folder / f".fashion-write-check-{secrets.token_hex(4)}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise RunDirError(f"cannot write in {folder} ({e.strerror}); choose another --out, "
                          "or make it writable") from e
    check_free_space(folder)


def clear(run_dir: Path) -> None:
    """Remove everything a run writes into `run_dir`, for a fresh start (--overwrite)."""
    run_dir = Path(run_dir)
    for name in (*ARTEFACTS, REPORT_HTML, REPORT_MD, PARTIAL_REPORT_HTML, PARTIAL_REPORT_MD):
        (run_dir / name).unlink(missing_ok=True)
    for folder in (TUNING, FIGURES, TRAINING_BACKUP, LOGS):  # no stale report or backup survives
        shutil.rmtree(run_dir / folder, ignore_errors=True)


def remove_leftovers(run_dir: Path) -> None:
    """Remove what a killed run left half-made: temporary files and a half-built report."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for staging in run_dir.glob(".report-*"):
        shutil.rmtree(staging, ignore_errors=True)
    for partial in [*run_dir.rglob(".*.tmp"), *run_dir.glob(".partial-*")]:
        partial.unlink(missing_ok=True)


def prepare(run_dir: Path, config: RunConfig, overwrite: bool,
            planned: tuple[str, ...] = ()) -> None:
    """Check, before any work, that `run_dir` may be written, and resumed with `config`.

    With `overwrite` only writability is checked: `clear` empties the folder once the data has
    loaded, so bad input loses nothing.

    Args:
        planned: settings a budget's plan fills in, not compared here (`fashion.runs.plan`).

    Raises:
        RunDirError: the folder cannot be written, or the run finished, or was started with
            other settings (`check_same_space` compares the search space).
    """
    run_dir = Path(run_dir)
    check_writable(run_dir)
    if overwrite:
        return
    if is_finished(run_dir):
        raise RunDirError(f"{run_dir} already holds a finished run; see its report with "
                          f"`fashion report {run_dir}`, or choose another --out for a new run")
    if (run_dir / CONFIG).exists():
        saved = read_json(run_dir / CONFIG)["config"]
        # The time budget may change: it spans resumes, so raising it is how a search that
        # ran out of time is continued.
        changed = settings_differences(saved, config.to_dict(),
                                       ignore=("data_dir", "time_budget", *planned))
        if changed:
            raise RunDirError(f"{run_dir} was started with other settings ({'; '.join(changed)}); "
                              "rerun with the same options to resume, or pass --overwrite")
