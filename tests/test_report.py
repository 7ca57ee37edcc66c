"""The report, on a run directory made by a tiny `fashion run`."""

import dataclasses
import hashlib
import json
import re
import shutil

import pytest

from fashion.cli import main
from fashion.errors import RunDirError
from fashion.evaluation import report
from fashion.runs import rundir
from fashion.storage import files

FIGURES = {"training_curves.png", "confusion_matrix.png", "per_class_f1.png",
           "worst_misclassified.png", "samples.png", "tuning_history.png",
           "hyperparameter_importance.png", "hyperparameter_effects.png"}
# An attribute or CSS url() that would make a browser fetch something over the network.
EXTERNAL_LOAD = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//|"""
                           r"""url\(\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
PNG = b"\x89PNG\r\n\x1a\n"


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
        rundir.RunDir(run_copy).read()


def test_a_failure_while_drawing_leaves_the_previous_report_untouched(run_copy, monkeypatch,
                                                                        data_dir):
    before = _digests(run_copy)

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report.plots, "plot_tuning_history", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        report.write_report(run_copy, data_dir=str(data_dir))
    assert _digests(run_copy) == before
    assert not list(run_copy.glob(".report-*"))  # the staging folder is cleaned up


def test_an_unfinished_run_gets_a_partial_report_of_the_trials_and_curves_so_far(run_copy,
                                                                                  capsys):
    for name in (rundir.METRICS, rundir.REPORT_HTML, rundir.REPORT_MD, rundir.MODEL):
        (run_copy / name).unlink()
    history = files.read_history(run_copy / rundir.HISTORY)
    assert main(["report", str(run_copy)]) == 0
    assert "partial report (the run has not finished)" in capsys.readouterr().out
    html = (run_copy / rundir.PARTIAL_REPORT_HTML).read_text()
    assert "has not finished" in html and "3 trials so far, 3 finished" in html
    assert f"the final training has run {len(history['loss'])} epochs" in html
    assert html.count("data:image/png;base64,") == 4  # curves, tuning, importance, effects
    assert not (run_copy / rundir.REPORT_HTML).exists()  # the run still counts as unfinished
    assert not list(run_copy.glob(".report-*"))


def test_a_check_of_a_space_that_fixes_everything_is_not_reported_as_a_search(tiny_run):
    saved = rundir.RunDir(tiny_run).read()
    checked = dataclasses.replace(saved, trials=[{**trial, "searched": False}
                                                 for trial in saved.trials])
    text = report.tuning_text(checked)
    assert text.startswith("Nothing was searched") and "scored" not in text
    assert report.summary_text(checked).endswith("after a "
                                                 f"{saved.metrics['tuning_seconds']:.0f} s "
                                                 "check of the space.")
    assert report.tuning_text(saved).startswith(f"A {saved.config.tuner} search")


def test_a_run_that_trained_on_its_validation_images_says_so(run_copy, data_dir):
    metrics = json.loads((run_copy / rundir.METRICS).read_text())
    (run_copy / rundir.METRICS).write_text(json.dumps({**metrics, "validation_trained_on": True}))
    assert main(["report", str(run_copy), "--data-dir", str(data_dir)]) == 0
    markdown = (run_copy / rundir.REPORT_MD).read_text()
    assert "| validation (trained on) |" in markdown
    assert "only the test split judges the model" in markdown
