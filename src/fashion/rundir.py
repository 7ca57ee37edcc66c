"""The run directory: the name of every file in it, how each is written and read back, and every
check made before a run creates, overwrites or resumes one.

Writes are atomic (a temporary file, then a rename), so a kill never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import secrets
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from fashion.config import RunConfig
from fashion.errors import RunDirError

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
LOGS = "logs"  # TensorBoard's: search/<trial>/... and final/
FIGURES = "figures"
# KerasTuner's project folder, and the files in it that fashion reads or adds.
TUNING = "tuning"
ORACLE_FILE = "oracle.json"
CLOCK_FILE = "search_clock.json"
TRIAL_FILE = "trial.json"
# The final training's backup, kept until the model it trains is saved.
TRAINING_BACKUP = "training-backup"
# Free space below which no trial or training starts: h5py, which writes Keras's checkpoints,
# crashes the whole process (a segmentation fault) when the disk fills mid-write.
MIN_FREE_BYTES = 64 * 2**20
# A refusal to resume names this many differences of the search space, then counts the rest.
MAX_NAMED_DIFFERENCES = 4
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


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` via a temporary file beside it, so a crash never leaves half a file.

    The temporary file is created with mode 0o666 and the kernel applies the umask, as it does
    for `open`: the process umask is never read or changed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w") as f:
            f.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


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


def config_record(config: RunConfig, checksums: dict[str, str], command: str,
                  device: dict, plan=None) -> dict:
    """Return what `config.json` holds: the settings, versions, data checksums, command, the
    device (`fashion.device.Device`) and a budget's plan (`fashion.plan.Plan`)."""
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


def check_free_space(folder: str | os.PathLike, needed: int = MIN_FREE_BYTES) -> None:
    """Refuse to start work that writes checkpoints on a nearly full disk."""
    if "://" in str(folder):
        return  # a remote store: no local disk to fill
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise RunDirError(f"only {free / 2**20:.0f} MiB free on the disk of {folder}, under the "
                          f"{needed / 2**20:.0f} MiB a run needs; free some space (then rerun to "
                          "resume) or choose another --out")


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
        planned: settings a budget's plan fills in, not compared here (`fashion.plan`).

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


def check_same_space(run_dir: Path, hypermodel) -> None:
    """Refuse to resume a search whose saved space differs from the hypermodel's current one.

    KerasTuner reloads the saved space and silently ignores a changed one.
    """
    oracle_file = Path(run_dir) / TUNING / ORACLE_FILE
    if not oracle_file.exists():
        return
    saved = read_json(oracle_file, made_by="fashion tune")
    try:
        saved_space = saved["hyperparameters"]["space"]
    except (KeyError, TypeError) as e:
        raise RunDirError(f"{oracle_file} is not a KerasTuner oracle file; pass --overwrite to "
                          "start the search afresh") from e
    from fashion.upstream import search_space

    changes = space_differences(saved_space, search_space(hypermodel))
    if changes:
        named = changes[:MAX_NAMED_DIFFERENCES]
        if len(changes) > len(named):
            named.append(f"and {len(changes) - len(named)} more")
        raise RunDirError(f"{run_dir} holds a search over another space ({'; '.join(named)}); "
                          "resume it with the code it was started with, or pass --overwrite")


def space_differences(saved: list[dict], wanted: list[dict]) -> list[str]:
    """Return 'name: what changed' for each hyperparameter added, removed or redefined.

    KerasTuner discovers a conditional hyperparameter declared inside a loop (the MLP's
    `layer_units_{i}`) only once a trial enters it, so a saved space may hold conditional ones a
    fresh discovery lacks: only an unconditional one missing is known to be removed.
    """
    old, new = _by_name(saved), _by_name(wanted)
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            if not old[name]["conditions"]:
                changes.append(f"{name}: removed")
        elif name not in old:
            changes.append(f"{name}: added")
        else:
            changes += [f"{name} {key}: {old[name].get(key)!r} -> {new[name].get(key)!r}"
                        for key in sorted(old[name].keys() | new[name].keys())
                        if old[name].get(key) != new[name].get(key)]
    return changes


def _by_name(space: list[dict]) -> dict[str, dict]:
    described = {}
    for entry in space:
        config = dict(entry["config"])
        config["conditions"] = [_condition(c) for c in config.get("conditions", [])]
        described[config.pop("name")] = {"type": entry["class_name"], **config}
    return described


def _condition(condition: dict) -> str:
    """Return 'conv_blocks in [2, 3]' for KerasTuner's saved `Parent` condition."""
    config = condition.get("config", {})
    return f"{config.get('name')} in {config.get('values')}"


@dataclass
class SearchClock:
    """Seconds a search has run, summed over every run of it, so a time budget spans resumes.

    Saved after each finished trial; the time of a trial cut short by a kill is not counted.
    """

    path: Path
    spent_before: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, run_dir: Path) -> SearchClock:
        path = Path(run_dir) / TUNING / CLOCK_FILE
        try:
            spent = float(json.loads(path.read_text())["seconds"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            spent = 0.0  # a new search, or a clock lost to a crash: count from now
        return cls(path, spent)

    def elapsed(self) -> float:
        return self.spent_before + time.monotonic() - self.started

    def deadline(self, budget_minutes: float) -> float:
        """Return the `time.monotonic()` after which no new trial should start."""
        return self.started + 60 * budget_minutes - self.spent_before

    def save(self) -> None:
        write_json(self.path, {"seconds": round(self.elapsed(), 1)})


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
