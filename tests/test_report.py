"""The report and the evaluate command, on a run directory made by a tiny `fashion run`."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fashion import run_report, rundir
from fashion.cli import main
from fashion.errors import ModelError, RunDirError
from fashion.report import kept_epoch, plot_hyperparameter_effects, plot_tuning_history
from fashion.trial_records import hyperparameter_importance, load_trials

FIGURES = {"training_curves.png", "confusion_matrix.png", "per_class_f1.png",
           "worst_misclassified.png", "samples.png", "tuning_history.png",
           "hyperparameter_importance.png", "hyperparameter_effects.png"}
# An attribute or CSS url() that would make a browser fetch something over the network.
EXTERNAL_LOAD = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|"""
                           r"""url\(\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory):
    """A finished run directory: 200 images a split, 3 one-epoch trials, 2 epochs of training.

    The cnn space, as the default preset's `vgg_quick` searches nothing and the report's
    tuning figures need trials that differ.
    """
    out = tmp_path_factory.mktemp("report") / "run"
    done = subprocess.run(
        [sys.executable, "-m", "fashion.cli", "run", "--data-dir", str(data_dir), "--out",
         str(out), "--limit", "200", "--space", "cnn", "--tuner", "random", "--max-trials", "3",
         "--max-epochs", "1", "--final-epochs", "2"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_MAX_STEPS_PER_EPOCH": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run, free to damage."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fashion_run_writes_a_self_contained_report_with_every_figure(tiny_run):
    html = (tiny_run / rundir.REPORT_HTML).read_text()
    markdown = (tiny_run / rundir.REPORT_MD).read_text()
    assert {p.name for p in (tiny_run / rundir.FIGURES).iterdir()} == FIGURES
    for name in FIGURES:
        assert (tiny_run / rundir.FIGURES / name).read_bytes()[:8] == PNG
        assert f"](figures/{name})" in markdown
    # Every figure embedded as base64 PNG, and nothing loaded from elsewhere.
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in images)
    assert not EXTERNAL_LOAD.search(html)
    assert "<link" not in html and "<script" not in html
    for heading in ("How good", "Where it fails", "What tuning found", "Configuration"):
        assert f"<h2>{heading}</h2>" in html and f"## {heading}" in markdown
    test = json.loads((tiny_run / rundir.METRICS).read_text())["test"]
    assert f"right {test['accuracy']:.2%} of the time" in markdown
    # The trials table: one row per trial, the best in bold.
    assert len(re.findall(r"^\| .*COMPLETED", markdown, re.MULTILINE)) == 3
    assert len(re.findall(r"^\| \*\*\d\*\* \| .*\*\*COMPLETED\*\*", markdown, re.MULTILINE)) == 1


def test_report_rebuilds_from_saved_files_without_retraining(run_copy, data_dir, capsys):
    for name in (rundir.REPORT_HTML, rundir.REPORT_MD):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / rundir.FIGURES)
    before = _digests(run_copy)
    assert main(["report", str(run_copy), "--data-dir", str(data_dir)]) == 0
    assert f"report: {run_copy / rundir.REPORT_HTML}" in capsys.readouterr().out
    after = _digests(run_copy)
    assert {k: v for k, v in after.items() if k in before} == before  # model, history... as saved
    assert set(after) - set(before) == {rundir.REPORT_HTML, rundir.REPORT_MD,
                                        *(f"figures/{n}" for n in FIGURES)}


@pytest.mark.parametrize("missing", [rundir.HISTORY, rundir.METRICS, rundir.CONFIG,
                                     rundir.BEST_HYPERPARAMETERS, rundir.MODEL])
def test_a_missing_file_is_named_and_the_old_report_kept(run_copy, capsys, missing):
    (run_copy / missing).unlink()
    before = _digests(run_copy)
    assert main(["report", str(run_copy)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("fashion: error: ") and f"{missing} is missing" in err
    assert "`fashion run` writes it" in err
    assert _digests(run_copy) == before


def test_missing_trials_are_named(run_copy):
    shutil.rmtree(run_copy / "tuning")
    with pytest.raises(RunDirError, match=r"tuning holds no trial_\*/trial.json; `fashion run`"):
        run_report.read_run_files(run_copy)


def test_a_failure_while_drawing_leaves_the_previous_report_untouched(run_copy, monkeypatch,
                                                                        data_dir):
    before = _digests(run_copy)

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(run_report.report, "plot_tuning_history", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        run_report.write_report(run_copy, data_dir=str(data_dir))
    assert _digests(run_copy) == before
    assert not list(run_copy.glob(".report-*"))  # the staging folder is cleaned up


def test_evaluate_prints_json_that_parses(tiny_run, data_dir, capsys):
    code = main(["evaluate", str(tiny_run / rundir.MODEL), "--data-dir", str(data_dir),
                 "--limit", "100", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "seed" and printed["model"].endswith("model.keras")
    test = printed["test"]
    assert test["n_images"] == 100 and len(test["per_class"]) == 10
    assert test["accuracy"] == pytest.approx(np.trace(test["confusion_matrix"]) / 100)


def test_evaluate_prints_the_metrics_table(tiny_run, data_dir, capsys):
    assert main(["evaluate", str(tiny_run / rundir.MODEL), "--data-dir", str(data_dir),
                 "--split", "standard", "--limit", "100"]) == 0
    out = capsys.readouterr().out
    assert "data split: standard" in out and "test split, 100 images" in out
    assert "Ankle boot" in out and "macro F1" in out


def _lambda_model(path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.save(path)


def _wrong_shape_model(path):
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")]).save(path)


@pytest.mark.parametrize("name, make, message", [
    ("garbage.keras", lambda p: p.write_bytes(b"\x00garbage, not a zip"),
     "is not a Keras model (not a .keras zip archive)"),
    ("lambda.keras", _lambda_model, "needs unsafe deserialisation"),
    ("shape.keras", _wrong_shape_model, "not 28x28x1 images to 10 class probabilities"),
    ("model.h5", lambda p: p.write_bytes(b"x"), "is not a .keras file"),
    ("absent.keras", lambda p: None, "absent.keras is missing"),
])
def test_evaluate_refuses_a_bad_model_in_one_line(tmp_path, capsys, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(ModelError, match=re.escape(message)):
        rundir.load_model(path)
    assert main(["evaluate", str(path), "--data-dir", str(tmp_path / "no-data")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fashion: error: ")
    assert message in err


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


def test_tuning_plots_accept_hyperband_budgets_and_conditional_values(tmp_path):
    trials = [{"number": i, "trial_id": f"{i:04d}", "status": "COMPLETED", "score": s,
               "epochs": e, "values": v, "log_sampled": ["learning_rate"]}
              for i, (s, e, v) in enumerate([
                  (0.80, 2, {"learning_rate": 1e-3, "blocks": 1, "opt": "adam"}),
                  (0.85, 2, {"learning_rate": 1e-2, "blocks": 2, "filters_1": 32, "opt": "sgd"}),
                  (0.90, 6, {"learning_rate": 3e-3, "blocks": 2, "filters_1": 64, "opt": "adam"}),
              ], start=1)]
    trials.append({**trials[0], "number": 4, "score": None, "status": "RUNNING"})
    for path in (plot_tuning_history(trials, "val_accuracy", "max", tmp_path / "h.png"),
                 plot_hyperparameter_effects(trials, ["learning_rate", "filters_1", "opt"],
                                             "val_accuracy", tmp_path / "e.png")):
        assert path.read_bytes()[:8] == PNG


def test_kept_epoch_is_early_stoppings_lowest_validation_loss_or_the_last():
    history = {"loss": [0.9, 0.5, 0.4, 0.3], "val_loss": [0.8, 0.45, 0.45, 0.5],
               "val_accuracy": [0.7, 0.8, 0.9, 0.85]}
    # EarlyStopping restores its first minimum of validation loss, not the best accuracy.
    assert kept_epoch(history, final_patience=3)[0] == 2
    assert kept_epoch(history, final_patience=3, monitor="val_accuracy")[0] == 3  # seed preset
    assert kept_epoch(history, final_patience=None)[0] == 4
