"""The run directory: its one reader and writer, and the atomic files under it."""

import json
import stat

import pytest

from fashion.errors import RunDirError
from fashion.runs.rundir import RunDir
from fashion.storage import files
from fashion.training.config import config_from_preset

CONFIG = config_from_preset("cnn", limit=200)
HISTORY = {"loss": [0.5, 0.25], "val_accuracy": [0.8, 0.9]}
METRICS = {"split": "seed", "test": {"accuracy": 0.9}}


def _started(path):
    """A run whose data loaded and whose search ran one trial: config.json and tuning/."""
    run = RunDir(path)
    run.write_record(CONFIG, {"train.gz": "abc"}, "fashion run", {"backend": "tensorflow"})
    trial = path / "tuning" / "trial_0000" / "trial.json"
    trial.parent.mkdir(parents=True)
    trial.write_text(json.dumps({"trial_id": "0000", "status": "COMPLETED", "score": 0.8,
                                 "hyperparameters": {"space": [], "values": {"units": 32}}}))
    return run


def _finished(path):
    run = _started(path)
    run.write_best_hyperparameters({"units": 32})
    files.write_history(run.history_path, HISTORY)
    run.write_metrics(METRICS)
    run.report_html().write_text("<html></html>")
    return run


def test_atomic_writes_leave_readable_files_and_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    files.write_json(path, {"accuracy": 0.9})
    assert files.read_json(path) == {"accuracy": 0.9}
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # group and others may read
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_history_round_trips(tmp_path):
    history = {"loss": [0.5, 0.25], "val_accuracy": [0.8, 0.9]}
    files.write_history(tmp_path / "history.csv", history)
    assert files.read_history(tmp_path / "history.csv") == history


def test_a_run_dir_is_made_without_touching_the_disk(tmp_path):
    run = RunDir(str(tmp_path / "nowhere"))
    assert run.path == tmp_path / "nowhere"
    assert run.model_path.parent == run.figures.parent == run.training_backup.parent == run.path
    assert run.report_html() != run.report_html(partial=True)
    assert not (tmp_path / "nowhere").exists()
    assert not run.has_record() and not run.is_partial() and not run.is_finished()
    assert run.saved_plan() is None


def test_a_finished_run_reads_back_what_was_written(tmp_path):
    run = _finished(tmp_path / "run")
    assert run.is_finished() and not run.is_partial() and run.search_ended()
    saved = run.read()
    assert saved.config == CONFIG == run.config()
    assert saved.record["command"] == "fashion run" and saved.record["plan"] is None
    assert saved.record["data_sha256"] == {"train.gz": "abc"}
    assert "keras" in saved.record["versions"]
    assert (saved.best_hyperparameters, saved.metrics, saved.history) == ({"units": 32}, METRICS,
                                                                          HISTORY)
    assert [t["trial_id"] for t in saved.trials] == ["0000"]


def test_a_partial_run_reads_what_it_has_so_far(tmp_path):
    run = _started(tmp_path / "run")
    assert run.is_partial() and not run.is_finished() and not run.search_ended()
    so_far = run.read_so_far()
    assert (so_far.best_hyperparameters, so_far.metrics, so_far.history) == ({}, {}, {})
    assert so_far.config == CONFIG and [t["score"] for t in so_far.trials] == [0.8]
    with pytest.raises(RunDirError, match="best_hyperparameters.json is missing; `fashion run` "
                       "writes it"):
        run.read()


def test_a_finished_run_missing_its_metrics_is_damaged_not_partial(tmp_path):
    run = _finished(tmp_path / "run")
    (run.path / "metrics.json").unlink()
    assert not run.is_partial() and not run.is_finished()
    with pytest.raises(RunDirError, match="metrics.json is missing; `fashion run` writes it"):
        run.read()


@pytest.mark.parametrize("name, read", [
    ("config.json", RunDir.record), ("metrics.json", RunDir.metrics),
    ("best_hyperparameters.json", RunDir.best_hyperparameters), ("history.csv", RunDir.history),
])
def test_a_corrupt_file_is_refused_in_one_line(tmp_path, name, read):
    run = _finished(tmp_path / "run")
    (run.path / name).write_text("{not json" if name.endswith(".json") else "epoch,loss\n1,x\n")
    with pytest.raises(RunDirError, match=f"{name} is corrupt .*; rerun `fashion run`") as error:
        read(run)
    assert len(str(error.value).splitlines()) == 1


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="is not a directory; pass a run directory made by "
                       "`fashion run`"):
        RunDir(tmp_path / "file").read()
    with pytest.raises(RunDirError, match="config.json is missing; `fashion run` writes it"):
        RunDir(tmp_path).read()
    with pytest.raises(RunDirError, match=r"tuning holds no trial_\*/trial.json"):
        RunDir(tmp_path).trials()


def test_a_resume_with_other_settings_is_refused_and_a_finished_run_kept(tmp_path):
    _started(tmp_path / "run").prepare(CONFIG, overwrite=False)  # the same settings: resumes
    with pytest.raises(RunDirError, match=r"started with other settings \(seed: 42 -> 7\)"):
        RunDir(tmp_path / "run").prepare(CONFIG.replace(seed=7), overwrite=False)
    run = _finished(tmp_path / "done")
    with pytest.raises(RunDirError, match="already holds a finished run"):
        run.prepare(CONFIG, overwrite=False)
    run.prepare(CONFIG, overwrite=True)


def test_clear_and_leftovers_remove_what_a_run_wrote(tmp_path):
    run = _finished(tmp_path / "run")
    staged = run.staging()
    (run.path / ".metrics.json.1234.tmp").write_text("")
    run.remove_leftovers()
    assert not staged.path.exists() and not list(run.path.glob(".*.tmp"))
    assert run.is_finished()
    (run.path / "notes.txt").write_text("mine")
    run.clear()
    assert [p.name for p in run.path.iterdir()] == ["notes.txt"]
