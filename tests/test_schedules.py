import time
import types

import keras
import numpy as np
import pytest

from fashion.spaces import schedules
from fashion.spaces.schedules import OneCycle


def test_rate_warms_up_to_the_peak_then_anneals_to_almost_zero():
    schedule = OneCycle(peak=0.01, warmup=0.25)
    assert schedule.rate(0.0) == pytest.approx(0.01 / 25)
    assert schedule.rate(0.25) == pytest.approx(0.01)
    assert schedule.rate(1.0) == pytest.approx(0.01 / 1000)
    rates = [schedule.rate(p) for p in np.linspace(0.25, 1.0, 20)]
    assert all(a > b for a, b in zip(rates[:-1], rates[1:], strict=True))


def _tiny_model(steps_per_execution=1):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(1.0), "categorical_crossentropy",
                  steps_per_execution=steps_per_execution)
    return model


def _data(n=64):
    return np.random.rand(n, 4).astype("float32"), keras.utils.to_categorical(np.arange(n) % 2)


def test_the_schedule_ends_at_its_last_rate_after_all_epochs():
    model, (x, y) = _tiny_model(), _data()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                        callbacks=[OneCycle(peak=0.1, end_divisor=100)])
    assert len(history.history["loss"]) == 3
    last_step = (3 * 8 - 1) / (3 * 8)
    assert float(model.optimizer.learning_rate) == pytest.approx(
        OneCycle(peak=0.1, end_divisor=100).rate(last_step), rel=1e-5)


def test_a_passed_deadline_stops_training_in_its_first_epoch():
    model, (x, y) = _tiny_model(), _data()
    history = model.fit(x, y, batch_size=8, epochs=50, verbose=0,
                        callbacks=[OneCycle(peak=0.1, deadline=time.monotonic())])
    assert len(history.history["loss"]) == 1
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 / 1000)


def test_a_resumed_fit_runs_a_whole_cycle_over_its_own_epochs():
    model, (x, y) = _tiny_model(), _data()
    rates = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates.append(float(model.optimizer.learning_rate)))
    model.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0,
              callbacks=[OneCycle(peak=0.1), probe])
    assert len(rates) == 2
    assert rates[1] == pytest.approx(OneCycle(peak=0.1).rate(15 / 16), rel=1e-5)


@pytest.mark.skipif(keras.backend.backend() == "torch",
                    reason="the torch backend refuses steps_per_execution > 1")
def test_with_several_steps_per_execution_the_rate_follows_each_group_of_steps():
    model, (x, y) = _tiny_model(steps_per_execution=4), _data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[OneCycle(peak=0.1)])
    # 8 steps an epoch in groups of 4: the last group began at step 12 of 16.
    assert float(model.optimizer.learning_rate) == pytest.approx(
        OneCycle(peak=0.1).rate(12 / 16), rel=1e-5)


def test_a_deadline_reached_mid_training_anneals_and_stops_early(monkeypatch):
    # The schedule's clock, advanced 10 ms a step: a slow training, without waiting for one.
    clock = {"now": 1000.0}
    monkeypatch.setattr(schedules, "time", types.SimpleNamespace(monotonic=lambda: clock["now"]))
    tick = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: clock.update(now=clock["now"] + 0.01))
    model, (x, y) = _tiny_model(), _data()
    history = model.fit(x, y, batch_size=8, epochs=200, verbose=0,
                        callbacks=[OneCycle(peak=0.1, deadline=clock["now"] + 0.4), tick])
    # 0.4 s of 10 ms steps, 8 steps an epoch: the deadline comes in epoch 6 of 200.
    assert len(history.history["loss"]) == 6
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 / 1000)


def test_a_warmup_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="warmup must be a share of training"):
        OneCycle(peak=0.1, warmup=1.0)
