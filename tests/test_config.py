import pytest

from fashion.config import PRESETS, RunConfig, config_from_preset
from fashion.errors import ConfigError


def test_seed_preset_is_the_notebooks_search():
    config = config_from_preset("seed")
    assert (config.space, config.tuner, config.max_epochs, config.factor) == \
        ("mlp", "hyperband", 15, 2)
    assert config.objective == "val_accuracy" and config.objective_direction == "max"


def test_seed_preset_retrains_as_the_notebook_did():
    # 20 epochs, the weights of the best validation accuracy restored, never stopped early.
    config = config_from_preset("seed")
    assert (config.final_epochs, config.final_monitor) == (20, "val_accuracy")
    assert config.final_patience >= config.final_epochs


def test_explicit_options_win_over_the_preset():
    config = config_from_preset("seed", max_epochs=3, factor=None)
    assert config.max_epochs == 3 and config.factor == PRESETS["seed"]["factor"]


@pytest.mark.parametrize("changes, message", [
    (dict(factor=1), "--factor must be an integer >= 2"),
    (dict(time_budget=-5.0), "--time-budget must be a positive number"),
    (dict(tuner="grid"), "unknown tuner 'grid'"),
    (dict(space="rnn"), "unknown space 'rnn'"),
    (dict(max_epochs=0), "--max-epochs must be an integer >= 1"),
    (dict(limit=5), "--limit must be an integer >= 20"),
    (dict(space="vgg", final_time_budget=0.0), "--final-time-budget must be a positive number"),
    (dict(space="cnn", final_time_budget=10.0), "--final-time-budget needs --space vgg"),
    (dict(final_monitor="accuracy"), "unknown final monitor 'accuracy'"),
])
def test_absurd_options_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**changes)


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        config_from_preset("fast")


def test_best_preset_fits_an_hour_and_keeps_the_test_set_out_of_every_choice():
    config = config_from_preset("best")
    assert config.space == "vgg" and config.split == "standard"
    assert config.time_budget + config.final_time_budget <= 57  # minutes left for data and report
    assert config.final_patience is None  # the one-cycle schedule's last weights are kept


def test_default_preset_fits_fifteen_minutes_on_the_seed_split():
    config = config_from_preset("default")
    assert config.space == "vgg_quick" and config.split == "seed"
    # 2 minutes left for data, the one-trial search, evaluation and the report.
    assert config.max_trials == 1 and config.final_time_budget <= 13
    assert config.final_patience is None  # the one-cycle schedule's last weights are kept


def test_cnn_preset_is_the_old_default_search():
    config = config_from_preset("cnn")
    assert (config.space, config.tuner, config.search_images) == ("cnn", "hyperband", 20000)


def test_another_space_from_the_default_preset_drops_its_deadline():
    assert config_from_preset("default", space="cnn").final_time_budget is None
    with pytest.raises(ConfigError, match="--final-time-budget needs --space vgg"):
        config_from_preset("default", space="cnn", final_time_budget=5.0)
