"""Crash-safe resume of a search: atomic project files, a checked search space, a budget clock.

KerasTuner already resumes a project it finds (finished trials kept, the trials that were running
retried), but it rewrites its JSON files in place, so a kill mid-write leaves a file the rerun
cannot read; it reloads the saved search space and silently ignores a changed one; and a time
budget would start again from zero on every rerun. This module closes those three gaps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import keras_tuner
from keras_tuner.src import utils as keras_tuner_utils
from keras_tuner.src.engine.trial import TrialStatus

from fashion import rundir
from fashion.errors import RunDirError

ORACLE_FILE = "oracle.json"
CLOCK_FILE = "search_clock.json"
# A refusal names this many differences, then counts the rest.
MAX_NAMED_DIFFERENCES = 4


def write_project_files_atomically() -> None:
    """Make KerasTuner write oracle.json, trial.json and the tuner file via a temporary file.

    Every KerasTuner JSON file goes through `keras_tuner.src.utils.save_json`, so this one
    replacement covers them all; it is idempotent.
    """
    keras_tuner_utils.save_json = _save_json_atomically


def _save_json_atomically(path, obj) -> str:
    text = json.dumps(obj)
    rundir.write_atomic(Path(path), text)
    return text


def adopt_project(project_dir: Path, tuner_id: str) -> None:
    """Let a tuner of another id resume a project: a standalone search resumed as a chief, or back.

    KerasTuner reloads a project only when it finds the file of its own tuner id (`tuner0.json`,
    `chief.json`); otherwise it starts afresh and overwrites the finished trials. That file holds
    `{}` for every built-in tuner, so writing it is what KerasTuner itself would have done.
    """
    tuner_file = project_dir / f"{tuner_id}.json"
    if (project_dir / ORACLE_FILE).exists() and not tuner_file.exists():
        rundir.write_atomic(tuner_file, "{}")


def forget_finished_retries(oracle: keras_tuner.Oracle) -> None:
    """Drop from a reloaded oracle's retry queue the trials that had in fact finished.

    KerasTuner saves oracle.json inside `end_trial` before it takes the trial off the running
    list, and a chief saves nothing after that; a kill in between, or any chief's last save,
    leaves a finished trial marked running, which the reload would then run again.
    """
    finished = (TrialStatus.COMPLETED, TrialStatus.FAILED)
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue
                           if oracle.trials[trial_id].status not in finished]


class _SpaceProbe:
    """Just enough of a tuner to run KerasTuner's own space discovery, with no project or chief."""

    _populate_initial_space = keras_tuner.Tuner._populate_initial_space
    _activate_all_conditions = keras_tuner.Tuner._activate_all_conditions

    def __init__(self, hypermodel: keras_tuner.HyperModel):
        self.hypermodel = hypermodel
        self.oracle = keras_tuner.Oracle()


def search_space(hypermodel: keras_tuner.HyperModel) -> list[dict]:
    """Return the space a fresh search would start from, as KerasTuner saves it in oracle.json."""
    probe = _SpaceProbe(hypermodel)
    probe._populate_initial_space()
    keras.backend.clear_session()  # the probe built real models; free them
    return json.loads(json.dumps(probe.oracle.hyperparameters.get_config()["space"]))


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


def check_same_space(run_dir: Path, project_name: str, hypermodel) -> None:
    """Refuse to resume a search whose saved space differs from the hypermodel's current one."""
    oracle_file = run_dir / project_name / ORACLE_FILE
    if not oracle_file.exists():
        return
    saved = rundir.read_json(oracle_file, made_by="fashion tune")
    try:
        saved_space = saved["hyperparameters"]["space"]
    except (KeyError, TypeError) as e:
        raise RunDirError(f"{oracle_file} is not a KerasTuner oracle file; pass --overwrite to "
                          "start the search afresh") from e
    changes = space_differences(saved_space, search_space(hypermodel))
    if changes:
        named = changes[:MAX_NAMED_DIFFERENCES]
        if len(changes) > len(named):
            named.append(f"and {len(changes) - len(named)} more")
        raise RunDirError(f"{run_dir} holds a search over another space ({'; '.join(named)}); "
                          "resume it with the code it was started with, or pass --overwrite")


@dataclass
class SearchClock:
    """Seconds a search has run, summed over every run of it, so a time budget spans resumes.

    Saved after each finished trial; the time of a trial cut short by a kill is not counted.
    """

    path: Path
    spent_before: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, project_dir: Path) -> SearchClock:
        path = Path(project_dir) / CLOCK_FILE
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
        rundir.write_json(self.path, {"seconds": round(self.elapsed(), 1)})
