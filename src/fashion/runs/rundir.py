"""The run directory: the one reader and writer of what `fashion run` saves, the name of every
file in it, and every check made before a run creates, overwrites or resumes one."""

from __future__ import annotations

import platform
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from fashion.errors import RunDirError
from fashion.storage.files import check_free_space, read_history, read_json, write_json
from fashion.training.config import RunConfig, load_config
from fashion.training.train import LOGS
from fashion.tuning.project import TUNING
from fashion.tuning.trial_records import load_trials

CONFIG = "config.json"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
MODEL = "model.keras"
CALIBRATION = "model.calibration.json"  # beside MODEL, as inference.calibrate names it
HISTORY = "history.csv"
METRICS = "metrics.json"
ARTEFACTS = (CONFIG, BEST_HYPERPARAMETERS, MODEL, HISTORY, METRICS)
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
# The report of a run still running or interrupted: the trials and curves so far.
PARTIAL_REPORT_HTML = "report-partial.html"
PARTIAL_REPORT_MD = "report-partial.md"
FIGURES = "figures"
# The final training's backup, kept until the model it trains is saved.
TRAINING_BACKUP = "training-backup"
# Where a report is built before it is moved into place; a kill can leave one behind.
STAGING_PREFIX = ".report-"
LIBRARIES = ("fashion", "keras", "keras-tuner", "tensorflow", "tensorflow-cpu", "jax", "torch",
             "numpy", "scikit-learn", "matplotlib", "pillow")


@dataclass(frozen=True)
class SavedRun:
    """What a run directory holds, read back at once (`RunDir.read`, `RunDir.read_so_far`)."""

    record: dict  # config.json: settings, command, versions, data checksums, device, plan
    config: RunConfig
    best_hyperparameters: dict
    metrics: dict
    history: dict[str, list[float]]
    trials: list[dict]  # as `fashion.tuning.trial_records.load_trials`


@dataclass(frozen=True)
class RunDir:
    """A run directory made by `fashion run`: where its files are, and the one module that reads
    and writes them. Making one touches no file; the methods that read or write say so.

    A missing or corrupt file is refused in one line that names it and the command that writes
    it (`RunDirError`).
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))  # a str is welcome too

    # Where the files others write are: the model, the training's history, backup and logs.
    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def training_backup(self) -> Path:
        return self.path / TRAINING_BACKUP

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def figures(self) -> Path:
        return self.path / FIGURES

    def report_html(self, partial: bool = False) -> Path:
        """The report's page; a partial report's when `partial`. Written last: it marks a
        finished run."""
        return self.path / (PARTIAL_REPORT_HTML if partial else REPORT_HTML)

    def report_markdown(self, partial: bool = False) -> Path:
        return self.path / (PARTIAL_REPORT_MD if partial else REPORT_MD)

    # What the run has reached.
    def has_record(self) -> bool:
        """Whether the run started: config.json is written once the data has loaded."""
        return (self.path / CONFIG).exists()

    def search_ended(self) -> bool:
        """Whether the search ended: its best hyperparameters are saved."""
        return (self.path / BEST_HYPERPARAMETERS).exists()

    def has_model(self) -> bool:
        return self.model_path.exists()

    def has_metrics(self) -> bool:
        return (self.path / METRICS).exists()

    def is_finished(self) -> bool:
        """Whether every phase of a run ended: the report is written last."""
        return self.has_metrics() and self.report_html().exists()

    def is_partial(self) -> bool:
        """Whether the run started and has not finished yet (running, or interrupted): neither
        its metrics nor its report exist. A finished run missing one of them is damaged."""
        return self.has_record() and not (self.has_metrics() or self.report_html().exists())

    # Reads.
    def record(self) -> dict:
        """Read config.json: what `config_record` saved.

        Raises:
            RunDirError: the folder is not a directory, or config.json is missing or corrupt.
        """
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} is not a directory; pass a run directory made by "
                              "`fashion run`")
        return read_json(self.path / CONFIG)

    def config(self) -> RunConfig:
        """Read the settings the run ran with."""
        return load_config(self.path / CONFIG)

    def saved_plan(self) -> dict | None:
        """Read the budget's plan (`fashion.runs.plan.Plan.to_dict`); None for a run without
        one or one that has not started."""
        return self.record().get("plan") if self.has_record() else None

    def best_hyperparameters(self) -> dict:
        return read_json(self.path / BEST_HYPERPARAMETERS)

    def metrics(self) -> dict:
        return read_json(self.path / METRICS)

    def history(self) -> dict[str, list[float]]:
        return read_history(self.history_path)

    def trials(self) -> list[dict]:
        return load_trials(self.path)

    def read(self) -> SavedRun:
        """Read every file of a finished run, naming the first that is missing or corrupt.

        A run of `fashion adapt` (its config names a photo folder) searched nothing: no trials.
        """
        record, config = self.record(), self.config()
        return SavedRun(record, config, self.best_hyperparameters(),
                        self.metrics(), self.history(),
                        [] if config.photo_dir else self.trials())

    def read_so_far(self) -> SavedRun:
        """Read what a run still running or interrupted has saved: no metrics, and the best
        hyperparameters, history and trials empty until they are written."""
        record = self.record()
        best = self.best_hyperparameters() if self.search_ended() else {}
        history = self.history() if self.history_path.exists() else {}
        trials = self.trials() if any((self.path / TUNING).glob("trial_*")) else []
        return SavedRun(record, self.config(), best, {}, history, trials)

    # Writes: whole files or none (`fashion.storage.files.write_atomic`).
    def write_record(self, config: RunConfig, checksums: dict[str, str], command: str,
                     device: dict, plan=None) -> None:
        """Write config.json (`config_record`)."""
        write_json(self.path / CONFIG, config_record(config, checksums, command, device, plan))

    def write_best_hyperparameters(self, values: dict) -> None:
        write_json(self.path / BEST_HYPERPARAMETERS, values)

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.path / METRICS, metrics)

    def staging(self) -> RunDir:
        """Make a hidden folder inside this one to build files in, then move them into place
        whole; `remove_leftovers` removes one a kill left behind."""
        return RunDir(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path))

    # Checks and clean-ups before a run writes.
    def prepare(self, config: RunConfig, overwrite: bool, planned: tuple[str, ...] = ()) -> None:
        """Check, before any work, that the folder may be written, and resumed with `config`.

        With `overwrite` only writability is checked: `clear` empties the folder once the data
        has loaded, so bad input loses nothing.

        Args:
            planned: settings a budget's plan fills in, not compared here (`fashion.runs.plan`).

        Raises:
            RunDirError: the folder cannot be written, or the run finished, or was started with
                other settings (`fashion.tuning.project.check_same_space` compares the space).
        """
        self.check_writable()
        if overwrite:
            return
        if self.is_finished():
            raise RunDirError(f"{self.path} already holds a finished run; see its report with "
                              f"`fashion report {self.path}`, or choose another --out for a new "
                              "run")
        if self.has_record():
            # The time budget may change: it spans resumes, so raising it is how a search that
            # ran out of time is continued.
            changed = settings_differences(self.record()["config"], config.to_dict(),
                                           ignore=("data_dir", "time_budget", *planned))
            if changed:
                raise RunDirError(f"{self.path} was started with other settings "
                                  f"({'; '.join(changed)}); rerun with the same options to "
                                  "resume, or pass --overwrite")

    def check_writable(self) -> None:
        """Refuse a folder that cannot be written, before any work is done.

        Raises:
            RunDirError: naming the folder (or the nearest existing one above it) and the reason.
        """
        folder = self.path.absolute()
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

    def clear(self) -> None:
        """Remove everything a run writes, for a fresh start (--overwrite)."""
        for name in (*ARTEFACTS, CALIBRATION, REPORT_HTML, REPORT_MD, PARTIAL_REPORT_HTML,
                     PARTIAL_REPORT_MD):
            (self.path / name).unlink(missing_ok=True)
        for folder in (TUNING, FIGURES, TRAINING_BACKUP, LOGS):  # no stale report or backup
            shutil.rmtree(self.path / folder, ignore_errors=True)

    def remove_leftovers(self) -> None:
        """Remove what a killed run left half-made: temporary files and a half-built report."""
        if not self.path.is_dir():
            return
        for staging in self.path.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(staging, ignore_errors=True)
        for partial in [*self.path.rglob(".*.tmp"), *self.path.glob(".partial-*")]:
            partial.unlink(missing_ok=True)


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
