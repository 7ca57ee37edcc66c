"""The main job end to end, at tiny scale, through the CLI as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fashion.cli import main
from fashion.runs import plan as planning
from fashion.runs import rundir
from fashion.storage import files

# The default preset without its budget: a tiny run is no place to measure and plan 15 minutes.
TINY = ["--no-budget", "--limit", "200", "--tuner", "random", "--max-trials", "2",
        "--max-epochs", "1", "--final-epochs", "1"]


def _fashion(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "fashion.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def test_tiny_run_writes_every_artefact(data_dir, tmp_path):
    out = tmp_path / "run"
    done = _fashion("run", "--data-dir", str(data_dir), "--out", str(out), *TINY,
                    env={"KERAS_MAX_STEPS_PER_EPOCH": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    for name in rundir.ARTEFACTS:
        assert (out / name).is_file(), name
    assert f"run directory: {out}" in done.stdout
    assert "accuracy" in done.stdout
    # Keras's debugging cap reached the training: 2 steps, whatever the data size.
    assert "Limiting steps_per_epoch to 2" in done.stderr
    record = json.loads((out / "config.json").read_text())
    assert record["seed"] == 42 and record["command"].startswith("fashion run")
    assert set(record["data_sha256"]) == {"train-images-idx3-ubyte.gz",
                                          "train-labels-idx1-ubyte.gz",
                                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert {"keras", "keras-tuner", "numpy", "python"} <= set(record["versions"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n_images"] == 200 and 0 <= metrics["test"]["accuracy"] <= 1
    assert len(files.read_history(out / "history.csv")["loss"]) == metrics["epochs_trained"]
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert "learning_rate" in best
    # TensorBoard: each trial in a folder of its own (with its hyperparameters), and the final
    # training. vgg_quick fixes every hyperparameter, so its search ends after one trial.
    logs = out / rundir.LOGS
    assert sorted(p.name for p in (logs / "search").iterdir()) == ["0"]
    assert list((logs / "search" / "0" / "execution0").glob("events.out.tfevents.*"))
    assert list((logs / "final" / "validation").glob("events.out.tfevents.*"))


def test_a_budget_is_planned_printed_and_saved_with_the_device(data_dir, tmp_path, capsys,
                                                                monkeypatch):
    # A device so slow that its 0.9 training minutes buy one epoch of the 200 images: the plan,
    # not a constant, sets the epochs. Measuring is stubbed; test_plan measures for real.
    monkeypatch.setattr(planning, "measure_training_speed", lambda *args: 5.0)
    out = tmp_path / "run"
    code = main(["run", "--data-dir", str(data_dir), "--out", str(out), "--limit", "200",
                 "--budget", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "[fashion] plan for 3 minutes on " in printed
    assert "network vgg in " in printed and "final training 0.9 min (about 1 epochs" in printed
    record = json.loads((out / "config.json").read_text())
    assert record["device"]["backend"] and record["device"]["cpu_cores"] >= 1
    assert record["plan"]["network"] == "vgg" and record["plan"]["epochs"] == 1
    assert (record["config"]["final_epochs"], record["config"]["final_time_budget"]) == (2, 0.9)
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 2
    report = (out / "report.md").read_text()
    assert "Device: " in report and "Plan for the 3-minute budget" in report


def test_a_finished_run_is_not_overwritten(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "report.html").write_text("<html></html>")
    code = main(["run", "--data-dir", str(data_dir), "--out", str(out), *TINY])
    assert code == 1
    err = capsys.readouterr().err
    assert "already holds a finished run" in err and f"fashion report {out}" in err
    assert "--overwrite" not in err
    assert (out / "metrics.json").read_text() == "{}"


@pytest.mark.parametrize("args, code, message", [
    (["--factor", "1"], 2, "--factor must be an integer >= 2"),
    (["--time-budget", "-3"], 2, "--time-budget must be a positive number"),
    (["--data-dir", "/nonexistent/fmnist"], 1, "does not exist"),
])
def test_bad_input_exits_non_zero_and_writes_nothing(data_dir, tmp_path, capsys, args, code,
                                                     message):
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), *TINY, *args]
    if "--data-dir" not in args:
        argv += ["--data-dir", str(data_dir)]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_corrupt_data_leaves_no_run_directory(data_dir, tmp_path, capsys):
    bad = tmp_path / "data"
    bad.mkdir()
    for path in data_dir.glob("*.gz"):
        (bad / path.name).symlink_to(path)
    (bad / "t10k-labels-idx1-ubyte.gz").unlink()
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    out = tmp_path / "run"
    assert main(["run", "--data-dir", str(bad), "--out", str(out), *TINY]) == 1
    assert "t10k-labels-idx1-ubyte.gz is truncated, damaged or not a gzip file" in \
        capsys.readouterr().err
    assert not out.exists()


def test_no_network_and_no_local_copy_is_explained(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FASHION_MNIST_DIR"}
    env["KERAS_HOME"] = str(tmp_path / "empty-keras-home")
    done = subprocess.run([sys.executable, "-m", "fashion.cli", "data", "--out",
                           str(tmp_path / "s.png")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 1
    assert "pass --data-dir DIR or set FASHION_MNIST_DIR" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "s.png").exists()


def test_unknown_tuner_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--tuner", "grid"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'grid'" in capsys.readouterr().err


def test_data_command_prints_the_splits_and_writes_the_grid(data_dir, tmp_path, capsys):
    out = tmp_path / "samples.png"
    assert main(["data", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "x_train: (60000, 28, 28, 1)" in printed and "x_val: (6000, 28, 28, 1)" in printed
    assert "x_test: (4000, 28, 28, 1)" in printed and "[600, 600, 600" in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["data", "--data-dir", str(data_dir), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "seed" and printed["test"]["shape"] == [4000, 28, 28, 1]
    assert printed["val"]["images_per_class"] == [600] * 10


# --- chaos: SIGKILL in every phase, rerun, and the run ends as if it had never stopped ---

# The vgg space: its batches, schedule and dropout resume exactly. From the cnn preset, which
# has no time budget (a deadline makes the schedule depend on the clock). Three final epochs, so
# a kill after the first leaves a training to continue.
CHAOS = ["--preset", "cnn", "--space", "vgg", "--limit", "200", "--tuner", "random",
         "--max-trials", "2", "--max-epochs", "1", "--final-epochs", "3"]
CHAOS_ENV = {"KERAS_MAX_STEPS_PER_EPOCH": "2", "PYTHONUNBUFFERED": "1"}


def _kill_when(argv, ready, timeout=600) -> str:
    """Start `fashion` and SIGKILL it once `ready(stdout so far)` is true; return the stdout."""
    process = subprocess.Popen([sys.executable, "-m", "fashion.cli", *argv], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env={**os.environ, **CHAOS_ENV})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not ready("".join(lines)):
        assert process.poll() is None, f"finished before the kill point:\n{lines[-20:]}"
        assert time.monotonic() < deadline, "timed out waiting for the kill point"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "".join(lines)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("chaos") / "whole"
    done = _fashion("run", "--data-dir", str(data_dir), "--out", str(out), *CHAOS, env=CHAOS_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / rundir.METRICS).read_text()), files.read_history(out / "history.csv")


KILL_POINTS = {
    "search": lambda out, printed: "trial 1/2 done" in printed,
    "final training": lambda out, printed: (out / rundir.TRAINING_BACKUP / "progress.json")
    .exists(),
    "evaluation": lambda out, printed: "[fashion] evaluating" in printed,
    "report": lambda out, printed: "[fashion] writing the report" in printed,
}


@pytest.mark.parametrize("phase", KILL_POINTS)
def test_a_run_killed_in_any_phase_resumes_to_the_same_result(data_dir, tmp_path, uninterrupted,
                                                             phase):
    out = tmp_path / "run"
    argv = ["run", "--data-dir", str(data_dir), "--out", str(out), *CHAOS]
    _kill_when(argv, lambda printed: KILL_POINTS[phase](out, printed))
    assert not rundir.RunDir(out).is_finished()
    done = _fashion(*argv, env=CHAOS_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics, history = uninterrupted
    resumed = json.loads((out / rundir.METRICS).read_text())
    for split in ("validation", "test"):
        for name in ("accuracy", "loss", "confusion_matrix"):
            assert resumed[split][name] == metrics[split][name], (split, name)
    assert files.read_history(out / "history.csv") == history
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")
                 or p.name.startswith((".report-", ".partial-")) or p.name == "training-backup"]
    assert not leftovers
    again = _fashion(*argv, env=CHAOS_ENV)
    assert again.returncode == 1 and f"fashion report {out}" in again.stderr


def test_in_graph_augmentation_resumes_exactly_after_a_kill_in_training(data_dir, tmp_path):
    # The accelerators' path: flips, shifts and erasing drawn by Keras layers, whose random
    # generators' state the training backup keeps beside the weights.
    argv = ["run", "--data-dir", str(data_dir), *CHAOS, "--augment-in-graph"]
    whole = tmp_path / "whole"
    done = _fashion(*argv, "--out", str(whole), env=CHAOS_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "run"
    _kill_when([*argv, "--out", str(out)],
               lambda printed: KILL_POINTS["final training"](out, printed))
    done = _fashion(*argv, "--out", str(out), env=CHAOS_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    assert files.read_history(out / "history.csv") == files.read_history(whole / "history.csv")
    resumed, metrics = (json.loads((run / rundir.METRICS).read_text()) for run in (out, whole))
    assert resumed["test"]["confusion_matrix"] == metrics["test"]["confusion_matrix"]


# --- a full disk, a read-only folder ---

def test_a_nearly_full_disk_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    usage = type("Usage", (), {"free": 10 * 2**20})
    monkeypatch.setattr("fashion.storage.files.shutil.disk_usage", lambda path: usage)
    out = tmp_path / "run"
    # A missing data folder too: the disk is checked first, so its error is the one shown.
    assert main(["run", "--data-dir", str(tmp_path / "none"), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "only 10 MiB free on the disk of" in err
    assert not out.exists()


def test_a_folder_that_cannot_be_written_is_refused_before_the_data_loads(tmp_path, capsys,
                                                                          monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("fashion.runs.rundir.Path.touch", refuse)
    out = tmp_path / "read-only" / "run"
    assert main(["run", "--data-dir", str(tmp_path / "none"), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"fashion: error: cannot write in {tmp_path} (Permission denied); choose "
                   "another --out, or make it writable")


def test_a_disk_that_fills_mid_run_stops_it_in_one_line(data_dir, tmp_path, capsys, monkeypatch):
    def disk_full(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("fashion.storage.files.write_atomic", disk_full)
    out = tmp_path / "run"
    assert main(["run", "--data-dir", str(data_dir), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"fashion: error: No space left on device writing {out / 'config.json'}; free "
                   "space or choose a writable --out, then rerun the same command to resume")
