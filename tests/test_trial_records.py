"""Reading a search's trials back, and what drove their scores."""

import json

import numpy as np
import pytest

from fashion.tuning.trial_records import hyperparameter_importance, load_trials, searched


def _write_trial(tuning, trial_id, score, values, status="COMPLETED"):
    folder = tuning / f"trial_{trial_id}"
    folder.mkdir(parents=True)
    space = [{"class_name": "Float", "config": {"name": "learning_rate", "sampling": "log"}}]
    (folder / "trial.json").write_text(json.dumps({
        "trial_id": trial_id, "status": status, "score": score,
        "hyperparameters": {"space": space, "values": values}}))


def test_trials_are_read_in_start_order_without_hyperband_bookkeeping(tmp_path):
    tuning = tmp_path / "tuning"
    _write_trial(tuning, "0000", 0.8, {"units": 64, "tuner/epochs": 2, "tuner/round": 0})
    _write_trial(tuning, "0001", None, {"units": 32, "tuner/epochs": 6}, status="RUNNING")
    _write_trial(tuning, "0002", 0.9, {"units": 128, "tuner/epochs": 6})
    (tuning / "oracle.json").write_text(json.dumps({"start_order": ["0002", "0000", "0001"]}))
    trials = load_trials(tmp_path)
    assert [(t["number"], t["trial_id"], t["score"], t["epochs"]) for t in trials] == [
        (1, "0002", 0.9, 6), (2, "0000", 0.8, 2), (3, "0001", None, 6)]
    assert trials[1]["values"] == {"units": 64}
    assert trials[0]["log_sampled"] == ["learning_rate"]


def test_importance_ranks_the_hyperparameter_that_drives_the_score_first():
    rng = np.random.default_rng(0)
    trials = []
    for number in range(1, 31):
        lr, units = 10 ** rng.uniform(-4, -1), int(rng.choice([32, 64, 128]))
        score = 0.9 - 0.1 * abs(np.log10(lr) + 2.5) + rng.normal(0, 0.002)
        trials.append({"number": number, "trial_id": str(number), "status": "COMPLETED",
                       "score": score, "epochs": None,
                       "values": {"learning_rate": lr, "units": units, "optimizer": "adam"}})
    importance = hyperparameter_importance(trials)
    assert list(importance) == ["learning_rate", "units"]  # "optimizer" never varied
    assert importance["learning_rate"] > 0.8 and sum(importance.values()) == pytest.approx(1)
    assert hyperparameter_importance(trials[:4]) == {}  # too few trials to rank


def test_a_trial_of_a_space_that_fixes_everything_is_marked_as_not_searched(tmp_path):
    tuning = tmp_path / "tuning"
    _write_trial(tuning, "0000", 0.8, {"units": 64})
    assert load_trials(tmp_path)[0]["searched"] and searched(load_trials(tmp_path))
    checked = tmp_path / "checked"
    folder = checked / "tuning" / "trial_0"
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({
        "trial_id": "0", "status": "COMPLETED", "score": 0.1, "hyperparameters": {
            "space": [{"class_name": "Fixed", "config": {"name": "dropout", "value": 0.2}}],
            "values": {"dropout": 0.2}}}))
    assert not searched(load_trials(checked))
