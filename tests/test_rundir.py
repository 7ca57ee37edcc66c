import stat

from fashion.storage import files


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
