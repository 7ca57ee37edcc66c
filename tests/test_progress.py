"""`fashion.tuning.progress`: the line printed as each trial of a search ends."""

import keras_tuner
import pytest
from keras_tuner.engine.trial import Trial

from fashion.tuning.progress import progress_line, searches_nothing
from fashion.tuning.upstream import TrialStatus

OBJECTIVE = keras_tuner.Objective("val_accuracy", "max")


def _ended(oracle, *trials):
    """The oracle, as if these (id, status, score) trials had ended in this order."""
    for trial_id, status, score in trials:
        trial = Trial(keras_tuner.HyperParameters(), trial_id=trial_id, status=status)
        trial.score = score
        oracle.trials[trial_id] = trial
        oracle.end_order.append(trial_id)
    return oracle


def test_a_finished_trial_shows_its_score_the_best_so_far_the_time_and_the_budget_left():
    oracle = _ended(keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=13),
                    ("00", TrialStatus.COMPLETED, 0.84), ("01", TrialStatus.FAILED, None),
                    ("02", TrialStatus.COMPLETED, 0.81234))
    assert progress_line(oracle, oracle.trials["02"], elapsed=62, budget_left=470) == (
        "[fashion] trial 3/13 done (id 02): val_accuracy 0.8123, best 0.8400, elapsed 1m02s, "
        "budget left 7m50s")


def test_a_failed_first_trial_has_no_best_and_no_budget_without_one():
    oracle = _ended(keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=2),
                    ("00", TrialStatus.FAILED, None))
    assert progress_line(oracle, oracle.trials["00"], elapsed=3725) == (
        "[fashion] trial 1/2 done (id 00): failed, best -, elapsed 1h02m05s")


@pytest.mark.parametrize("oracle, total", [
    # Hyperband sizes itself: with 3 epochs and factor 3, one bracket of 2 trials and one of
    # 3 trials whose best continues, 6 an iteration.
    (keras_tuner.oracles.HyperbandOracle(OBJECTIVE, max_epochs=3, factor=3), "6"),
    (keras_tuner.oracles.HyperbandOracle(OBJECTIVE, max_epochs=3, factor=3,
                                         hyperband_iterations=2), "12"),
    (keras_tuner.Oracle(OBJECTIVE, max_trials=None), "?"),  # no way to know
])
def test_the_total_is_what_the_search_plans(oracle, total):
    _ended(oracle, ("00", TrialStatus.COMPLETED, 0.5))
    assert progress_line(oracle, oracle.trials["00"], elapsed=0).startswith(
        f"[fashion] trial 1/{total} done (id 00): val_accuracy 0.5000, best 0.5000")


def test_a_space_that_fixes_every_setting_is_shown_as_checked_not_as_a_trials_score():
    oracle = keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=1)
    oracle.hyperparameters.Fixed("learning_rate", 2e-3)
    _ended(oracle, ("00", TrialStatus.COMPLETED, 0.1))
    assert searches_nothing(oracle.hyperparameters)
    assert progress_line(oracle, oracle.trials["00"], elapsed=12) == (
        "[fashion] space checked: it builds and trains (nothing to search: every setting is "
        "fixed), 0m12s")
    failed = _ended(keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=1),
                    ("00", TrialStatus.FAILED, None))
    failed.hyperparameters.Fixed("learning_rate", 2e-3)
    assert "its check trial failed" in progress_line(failed, failed.trials["00"], elapsed=1)


def test_a_space_with_one_choice_left_is_searched():
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Fixed("dropout", 0.2)
    hyperparameters.Float("learning_rate", 1e-4, 1e-2)
    assert not searches_nothing(hyperparameters)
    assert not searches_nothing(keras_tuner.HyperParameters())  # not known yet
