"""docs/notebook.md's cell runs as written, at tiny scale."""

import re
from pathlib import Path

import keras
import pytest

import fashion
from fashion.training import config

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebook.md"


@pytest.mark.integration
def test_the_notebook_cell_runs(data_dir, tmp_path, monkeypatch, capsys):
    [cell] = re.findall(r"```python\n(.*?)```", NOTEBOOK.read_text(), re.DOTALL)
    full_size = config.config_from_preset
    # The notebook's search at tiny scale: 200 images a split, 2 steps an epoch, 2 epochs.
    monkeypatch.setattr(config, "config_from_preset", lambda preset: full_size(
        preset, limit=200, max_epochs=2, final_epochs=2, data_dir=str(data_dir)))
    monkeypatch.chdir(tmp_path)
    keras.config.set_max_steps_per_epoch(2)
    try:
        exec(compile(cell, str(NOTEBOOK), "exec"), {})
    finally:
        keras.config.set_max_steps_per_epoch(None)
    out = capsys.readouterr().out
    assert re.search(r"test loss [\d.]+, accuracy 0\.\d{4}, macro F1 0\.\d{4}", out)
    assert re.search(r"\d+ trials; the best scored", out)
    assert (tmp_path / "runs" / "notebook" / "report.html").is_file()
    guessed = out.strip().splitlines()[-1]
    assert guessed.startswith("[") and any(name in guessed for name in fashion.CLASS_NAMES)


def test_the_api_names_resolve_and_unknown_ones_do_not():
    for name in fashion.API:
        assert getattr(fashion, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fashion.nope  # noqa: B018
