"""The tuning engine at tiny scale: budgets, resume after SIGKILL, refused changes, chief and
workers on loopback, seeded searches, memory, bad options."""

import gc
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import Watched
from tensorflow.python.framework.func_graph import FuncGraph

from fashion.cli import main
from fashion.spaces import cnn
from fashion.tuning.upstream import releasing_traced_graphs

SRC = Path(__file__).resolve().parents[1] / "src"
# The cnn preset (the old default): the default preset's vgg_quick space fixes every
# hyperparameter, so a search of it runs one trial.
TINY = ["--limit", "200", "--max-epochs", "1", "--tuner", "random", "--preset", "cnn"]
# Subprocesses: two steps per epoch whatever the data, and our sources first on the path.
SUBPROCESS_ENV = {"KERAS_MAX_STEPS_PER_EPOCH": "2",
                  "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC),
                                                              os.environ.get("PYTHONPATH")]))}


@pytest.fixture(autouse=True)
def two_steps_per_epoch():
    keras.config.set_max_steps_per_epoch(2)
    yield
    keras.config.set_max_steps_per_epoch(None)


def _tune(data_dir, out, *extra):
    return ["tune", "--data-dir", str(data_dir), "--out", str(out), *TINY, *extra]


def _trials(out) -> dict[str, dict]:
    return {json.loads(p.read_text())["trial_id"]: json.loads(p.read_text())
            for p in sorted((out / "tuning").glob("trial_*/trial.json"))}


def _completed(out) -> dict[str, dict]:
    return {k: t for k, t in _trials(out).items() if t["status"] == "COMPLETED"}


def _sequence(out) -> list[dict]:
    return [t["hyperparameters"]["values"] for _, t in sorted(_trials(out).items())]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_quiet_prints_only_the_result(data_dir, tmp_path, capsys):
    assert main(_tune(data_dir, tmp_path / "run", "--max-trials", "1", "--quiet")) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" after ")[0] for line in printed] == ["best hyperparameters",
                                                              f"run directory: {tmp_path / 'run'}"]


# --- Keras's debugging caps ---

@pytest.mark.integration
def test_the_epoch_cap_lets_hyperband_continue_its_trials(data_dir, tmp_path):
    out = tmp_path / "run"
    keras.config.set_max_epochs(1)
    try:
        assert main(["tune", "--data-dir", str(data_dir), "--out", str(out), "--limit", "200",
                     "--preset", "cnn", "--tuner", "hyperband", "--max-epochs", "3",
                     "--factor", "3"]) == 0
    finally:
        keras.config.set_max_epochs(None)
    trials = _trials(out)
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    continued = [t for t in trials.values()
                 if t["hyperparameters"]["values"].get("tuner/initial_epoch", 0) > 0]
    assert continued  # the rounds that start where their parent stopped ran too


# --- budgets ---

@pytest.mark.integration
def test_max_trials_stops_the_search_and_reports_each_trial(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tune(data_dir, out, "--max-trials", "2")) == 0
    printed = capsys.readouterr().out
    assert len(_completed(out)) == 2
    assert "Search space summary" in printed
    assert "[fashion] trial 1/2 done" in printed and "[fashion] trial 2/2 done" in printed
    assert "best 0." in printed and "elapsed" in printed and "budget left" in printed
    table = _run_trials_command(out, capsys)
    scores = [float(line.split()[3]) for line in table.splitlines()[1:]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 2


def _run_trials_command(out, capsys) -> str:
    assert main(["trials", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["rank", "trial", "status", "val_accuracy"]
    return table


@pytest.mark.integration
def test_time_budget_stops_the_search_and_spans_resumes(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = _tune(data_dir, out, "--max-trials", "20", "--time-budget", "0.001")
    assert main(args) == 0
    assert len(_trials(out)) == 1  # the budget lets one trial run, so there is a best
    assert "best hyperparameters" in capsys.readouterr().out
    assert main(args) == 0  # the budget is spent: the rerun starts no trial
    assert len(_trials(out)) == 1
    assert (out / "best_hyperparameters.json").is_file()


# --- resume ---

@pytest.mark.integration
def test_resume_after_sigkill_keeps_finished_trials_and_does_not_rerun_them(data_dir, tmp_path,
                                                                           watched):
    out = tmp_path / "run"
    args = _tune(data_dir, out, "--max-trials", "4")
    first = watched(args, tmp_path / "first.log", SUBPROCESS_ENV)
    first.wait_for(r"\[fashion\] trial \d/4 done")  # printed once the trial is saved
    first.kill()
    before = _completed(out)
    assert 1 <= len(before) < 4, first.output()[-2000:]
    # Keras's debugging cap reached the process's training: 2 steps, whatever the data size.
    assert "Limiting steps_per_epoch to 2" in first.output()
    mtimes = {k: (out / "tuning" / f"trial_{k}" / "trial.json").stat().st_mtime_ns
              for k in before}

    rerun = subprocess.run([sys.executable, "-m", "fashion.cli", *args], capture_output=True,
                           text=True, env={**os.environ, **SUBPROCESS_ENV}, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = _completed(out)
    assert len(after) == 4
    for trial_id, trial in before.items():  # untouched: neither lost nor run again
        assert after[trial_id] == trial
        path = out / "tuning" / f"trial_{trial_id}" / "trial.json"
        assert path.stat().st_mtime_ns == mtimes[trial_id]
    assert rerun.stdout.count("[fashion] trial ") == 4 - len(before)


@pytest.mark.integration
def test_a_changed_space_or_setting_is_refused_naming_the_difference(data_dir, tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "run"
    assert main(_tune(data_dir, out, "--max-trials", "1")) == 0
    capsys.readouterr()

    assert main(_tune(data_dir, out, "--max-trials", "1", "--max-epochs", "2")) == 1
    err = capsys.readouterr().err.strip()
    assert "max_epochs: 1 -> 2" in err and len(err.splitlines()) == 1

    monkeypatch.setattr(cnn, "CNN_MAX_BLOCKS", 2)  # the code of the space changed
    assert main(_tune(data_dir, out, "--max-trials", "1")) == 1
    err = capsys.readouterr().err.strip()
    assert "another space" in err and "conv_blocks max_value: 3 -> 2" in err
    assert "filters_1 conditions: ['conv_blocks in [2, 3]'] -> ['conv_blocks in [2]']" in err
    assert len(err.splitlines()) == 1
    assert "--overwrite" in err
    assert len(_trials(out)) == 1


# --- distributed ---

def _distributed(watched, data_dir, out, tmp_path, max_trials, chief_extra=()):
    args = [*_tune(data_dir, out, "--max-trials", str(max_trials)),
            "--oracle-port", str(_free_port())]
    chief = watched([*args, "--chief", *chief_extra], tmp_path / "chief.log", SUBPROCESS_ENV)
    workers = {w: watched([*args, "--worker", w], tmp_path / f"worker-{w}.log", SUBPROCESS_ENV)
               for w in "12"}
    return chief, workers


def _exits_by_itself(run: Watched, timeout=240):
    try:
        code = run.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        raise AssertionError(f"did not exit by itself: {run.output()[-3000:]}") from None
    assert code == 0, run.output()[-3000:]


@pytest.mark.integration
def test_chief_and_two_workers_run_each_trial_once_and_exit(data_dir, tmp_path, watched):
    out = tmp_path / "run"
    started = time.monotonic()
    chief, workers = _distributed(watched, data_dir, out, tmp_path, max_trials=4)
    for run in [chief, *workers.values()]:
        _exits_by_itself(run)
    print(f"chief and two workers, 4 trials: {time.monotonic() - started:.1f} s")
    oracle = json.loads((out / "tuning" / "oracle.json").read_text())
    assert len(_completed(out)) == 4
    assert sorted(oracle["end_order"]) == sorted(_trials(out)) and len(oracle["end_order"]) == 4
    assert set(oracle["run_times"].values()) == {1}  # no trial ran twice
    assert "best hyperparameters" in chief.output()


@pytest.mark.integration
def test_a_worker_killed_mid_trial_does_not_stall_the_others(data_dir, tmp_path, watched):
    out = tmp_path / "run"
    started = time.monotonic()
    chief, workers = _distributed(watched, data_dir, out, tmp_path, max_trials=5,
                                  chief_extra=["--worker-timeout", "6"])

    def worker_1_trains():
        try:
            ongoing = json.loads((out / "tuning" / "oracle.json").read_text())["ongoing_trials"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return False
        trial = _trials(out).get(ongoing.get("worker-1"))
        return trial is not None and trial["status"] == "RUNNING"

    # Keras says so as the first trial's training starts (a worker prints nothing before).
    workers["1"].wait_for(r"Limiting steps_per_epoch", ready=worker_1_trains)
    workers["1"].kill()
    _exits_by_itself(chief)
    _exits_by_itself(workers["2"])
    print(f"chief and two workers, one killed, 5 trials: {time.monotonic() - started:.1f} s")
    assert len(_completed(out)) == 5
    assert "worker worker-1 silent for 6 s: dropped, its trial" in chief.output()


# --- reproducibility ---

# Bayesian: 2 random trials, then 1 chosen by the Gaussian process from their scores.
@pytest.mark.integration
@pytest.mark.parametrize("tuner, trials", [("random", 3), ("bayesian", 3)])
def test_the_same_seed_repeats_the_hyperparameter_sequence(data_dir, tmp_path, capsys, tuner,
                                                           trials):
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert main([*_tune(data_dir, out, "--max-trials", str(trials), "--seed", "7"),
                     "--tuner", tuner]) == 0
    first, second = (_sequence(out) for out in runs)
    assert len(first) == trials and first == second
    scores = [[t["score"] for _, t in sorted(_trials(out).items())] for out in runs]
    assert scores[0] == scores[1]  # a seed per trial: the same training, too
    assert json.loads((runs[0] / "config.json").read_text())["seed"] == 7


# --- memory ---

def _live_func_graphs() -> int:
    gc.collect()
    return sum(isinstance(o, FuncGraph) for o in gc.get_objects())


def test_a_trained_models_graphs_are_freed_after_the_block():
    before = _live_func_graphs()
    with releasing_traced_graphs():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
        assert _live_func_graphs() > before
    del model
    keras.backend.clear_session()
    assert _live_func_graphs() == before


# --- bad options ---

@pytest.mark.parametrize("args, message", [
    (["--no-budget", "--time-budget", "-1"], "--time-budget must be a positive number"),
    (["--time-budget", "5"], "--budget plans the minutes and epochs itself, so --time-budget"),
    (["--budget", "1"], "--budget must be at least 3 minutes"),
    (["--space", "cnn", "--network", "vgg-2x"], "--network shapes the vgg spaces only"),
    (["--factor", "1"], "--factor must be an integer >= 2"),
    (["--max-trials", "0"], "--max-trials must be an integer >= 1"),
    (["--tuner", "grid"], "invalid choice: 'grid'"),
    (["--space", "rnn"], "invalid choice: 'rnn'"),
    (["--worker", "chief-2"], "must not contain 'chief'"),
    (["--chief", "--oracle-port", "70000"], "--oracle-port must be between 1 and 65535"),
    (["--chief", "--worker", "1"], "not allowed with argument --chief"),
])
def test_bad_options_get_a_one_line_error_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    try:
        code = main(["tune", "--out", str(out), *args])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()
