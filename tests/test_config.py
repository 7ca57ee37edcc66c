import pytest

from fashion.errors import ConfigError
from fashion.training.config import PRESETS, RunConfig, config_from_preset


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
    (dict(space="vgg", budget=1.0), "--budget must be at least 3 minutes, got 1.0"),
    (dict(space="vgg", budget=float("nan")), "--budget must be at least 3 minutes"),
    (dict(space="vgg", network="resnet"), "unknown network 'resnet'"),
    (dict(space="vgg", precision="float8"), "unknown precision 'float8'"),
    (dict(space="vgg", precision="mixed_float16"), "unknown precision 'mixed_float16'"),
    (dict(space="vgg", budget=float("inf")), "--budget must be at least 3 minutes"),
    (dict(space="cnn", network="vgg-2x"), "--network shapes the vgg spaces only"),
    (dict(fold_validation=True, final_patience=3), "--fold-validation trains on the validation"),
])
def test_absurd_options_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**changes)


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        config_from_preset("fast")


def test_best_preset_plans_an_hour_and_keeps_the_test_set_out_of_every_choice():
    config = config_from_preset("best")
    assert config.space == "vgg" and config.split == "standard"
    assert config.budget == 60  # minutes and epochs come from its plan (test_plan)
    assert config.final_patience is None  # the one-cycle schedule's last weights are kept
    # Validation ranks the search's trials, then the final training learns from it too.
    assert config.fold_validation
    # Validation ranks the search's trials, then the final training learns from it too.
    assert config.fold_validation


def test_default_preset_plans_fifteen_minutes_on_the_seed_split():
    config = config_from_preset("default")
    assert config.space == "vgg_quick" and config.split == "seed"
    assert config.max_trials == 1 and config.budget == 15
    assert config.final_patience is None  # the one-cycle schedule's last weights are kept
    assert not config.fold_validation  # its validation judges the recipe's levers


def test_minutes_and_epochs_are_planned_or_set_by_hand_not_both():
    with pytest.raises(ConfigError, match="--budget plans the minutes and epochs itself, so "
                       "--final-epochs, --time-budget cannot go with it"):
        config_from_preset("best", final_epochs=5, time_budget=2.0)
    by_hand = config_from_preset("best", planned=False, final_epochs=5)
    assert by_hand.budget is None and by_hand.final_epochs == 5
    with pytest.raises(ConfigError, match="--budget and --no-budget contradict"):
        config_from_preset("best", planned=False, budget=30.0)


def test_another_space_drops_the_presets_budget_but_not_an_explicit_one():
    assert config_from_preset("default", space="cnn").budget is None
    with pytest.raises(ConfigError, match="--budget needs --space vgg or vgg_quick"):
        config_from_preset("default", space="cnn", budget=20.0)


def test_cnn_preset_is_the_old_default_search():
    config = config_from_preset("cnn")
    assert (config.space, config.tuner, config.search_images) == ("cnn", "hyperband", 20000)


def test_another_space_from_the_default_preset_drops_its_deadline():
    assert config_from_preset("default", space="cnn").final_time_budget is None
    with pytest.raises(ConfigError, match="--final-time-budget needs --space vgg"):
        config_from_preset("default", space="cnn", final_time_budget=5.0)
