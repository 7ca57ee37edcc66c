"""Runs side by side, from their saved files."""

import json
import shutil

import pytest

from fashion.cli import main
from fashion.runs import rundir


@pytest.fixture
def two_runs(tiny_run, tmp_path):
    """The tiny run, and a copy of it that ran with another seed and scored higher."""
    first = shutil.copytree(tiny_run, tmp_path / "first")
    second = shutil.copytree(tiny_run, tmp_path / "second")
    record = json.loads((second / rundir.CONFIG).read_text())
    record["config"]["seed"] = 7
    (second / rundir.CONFIG).write_text(json.dumps(record))
    metrics = json.loads((second / rundir.METRICS).read_text())
    metrics["test"]["accuracy"] += 0.01
    (second / rundir.METRICS).write_text(json.dumps(metrics))
    return first, second


def test_compare_names_the_better_run_and_what_differed(two_runs, tmp_path, capsys):
    first, second = two_runs
    page = tmp_path / "compare.html"
    assert main(["compare", str(first), str(second), "--out", str(page)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Best: {second}, test accuracy") and "+0.0100 over the next" in out
    assert "settings that differ (in the order above):\n  seed: 7 | 42" in out
    html = page.read_text()
    assert "data:image/png;base64," in html and "://" not in html.replace("file://", "")

    assert main(["compare", str(first), str(second), "--json", "--out", str(page)]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert [row["run"] for row in comparison["runs"]] == [str(second), str(first)]
    assert comparison["differences"] == {"seed": [7, 42]}


def test_compare_refuses_one_run_or_an_unfinished_one(two_runs, tmp_path, capsys):
    first, second = two_runs
    assert main(["compare", str(first)]) == 2
    (second / rundir.METRICS).unlink()
    assert main(["compare", str(first), str(second), "--out", str(tmp_path / "c.html")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "compare needs two or more run directories" in err[0]
    assert "metrics.json is missing" in err[1]


def test_a_validation_accuracy_of_trained_on_images_is_not_compared(two_runs, tmp_path, capsys):
    first, second = two_runs
    metrics = json.loads((second / rundir.METRICS).read_text())
    (second / rundir.METRICS).write_text(json.dumps({**metrics, "validation_trained_on": True}))
    assert main(["compare", str(first), str(second), "--json", "--out",
                 str(tmp_path / "compare.html")]) == 0
    rows = {row["run"]: row for row in json.loads(capsys.readouterr().out)["runs"]}
    assert rows[str(second)]["val_accuracy"] is None
    assert rows[str(first)]["val_accuracy"] == metrics["validation"]["accuracy"]
