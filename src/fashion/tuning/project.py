"""The search's files inside a run directory: KerasTuner's project folder, the search clock,
and the check that a resumed search explores the space it was started with."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from fashion.errors import RunDirError
from fashion.storage.files import read_json, write_json
from fashion.tuning.upstream import ORACLE_FILE, search_space

# KerasTuner's project folder, and the files in it that fashion reads or adds.
TUNING = "tuning"
CLOCK_FILE = "search_clock.json"
# A refusal to resume names this many differences of the search space, then counts the rest.
MAX_NAMED_DIFFERENCES = 4


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
