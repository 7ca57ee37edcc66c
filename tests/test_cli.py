"""The command line's own conveniences: version, help, --print-config, trials as JSON."""

import json
import subprocess
import sys

import pytest

from fashion import __version__
from fashion.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fashion {__version__}"


def test_help_shows_what_each_preset_resolves_to_and_the_environment(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    best = next(line for line in out.splitlines() if line.strip().startswith("best:"))
    assert "space=vgg" in best and "split=standard" in best
    for variable in ("FASHION_MNIST_DIR", "KERAS_BACKEND", "KERAS_MAX_EPOCHS",
                     "KERASTUNER_TUNER_ID"):
        assert variable in out


@pytest.mark.integration
def test_print_config_prints_what_would_run_without_running_or_importing_keras(tmp_path):
    script = ("import sys; from fashion.cli import main; "
              "code = main(['run', '--preset', 'best', '--limit', '300', '--print-config', "
              f"'--out', {str(tmp_path / 'run')!r}]); "
              "print('keras' in sys.modules, file=sys.stderr); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["preset"] == "best" and config["space"] == "vgg" and config["limit"] == 300
    assert done.stderr.strip().endswith("False")
    assert not (tmp_path / "run").exists()


def _trial(tuning, trial_id, score):
    folder = tuning / f"trial_{trial_id}"
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps({
        "trial_id": trial_id, "status": "COMPLETED", "score": score,
        "hyperparameters": {"space": [], "values": {"units": 32}}}))


def test_trials_as_json_best_first_and_watch_ends_with_the_search(tmp_path, capsys):
    _trial(tmp_path / "tuning", "0000", 0.7)
    _trial(tmp_path / "tuning", "0001", 0.9)
    assert main(["trials", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [t["trial_id"] for t in printed] == ["0001", "0000"]
    (tmp_path / "best_hyperparameters.json").write_text("{}")  # the search has ended
    assert main(["trials", str(tmp_path), "--watch", "0.1"]) == 0
    assert "0001" in capsys.readouterr().out
    assert main(["trials", str(tmp_path), "--watch", "0"]) == 2
