"""`fashion.training.train`: the final training, and the callbacks that let a killed one
resume as if it had never stopped."""

import json

import keras
import keras_tuner
import numpy as np
import pytest

from fashion.spaces.mlp import notebook_best_hyperparameters
from fashion.spaces.registry import hypermodel_for
from fashion.storage import files
from fashion.storage.dataset import Splits
from fashion.training.config import config_from_preset
from fashion.training.train import ResumableEarlyStopping, ResumableTraining, train_best


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    return x, keras.utils.to_categorical(np.arange(n) % 10, 10)


def _model(seed=3):
    """A small network with dropout, whose random generator a resume must restore."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.5, seed=seed),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    return model


def _fit(model, backup, epochs):
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[ResumableTraining(backup, backup / "history.csv")])
    return model


def test_a_training_stopped_after_two_epochs_resumes_to_what_three_straight_epochs_give(
        tmp_path):
    straight = _fit(_model(), tmp_path / "straight", epochs=3)
    _fit(_model(), tmp_path / "stopped", epochs=2)  # as if killed once epoch 2 was backed up
    resumed = _fit(_model(), tmp_path / "stopped", epochs=3)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # dropout's masks drawn as an unbroken run drew them
    history = files.read_history(tmp_path / "stopped" / "history.csv")
    assert history == files.read_history(tmp_path / "straight" / "history.csv")
    assert len(history["loss"]) == 3
    progress = json.loads((tmp_path / "stopped" / "progress.json").read_text())
    assert progress["epochs"] == 3
    assert ResumableTraining.seconds_spent(tmp_path / "stopped") == progress["seconds"]
    assert ResumableTraining.seconds_spent(tmp_path / "new") == 0.0


def test_a_kill_between_the_backups_files_still_resumes_exactly(tmp_path):
    # Killed after Keras backed epoch 2 up but before progress.json said so: the random
    # generators' state is not read from the backup, so nothing of it is lost.
    straight = _fit(_model(), tmp_path / "straight", epochs=3)
    stopped = tmp_path / "stopped"
    _fit(_model(), stopped, epochs=1)
    after_epoch_1 = (stopped / "progress.json").read_text()
    _fit(_model(), stopped, epochs=2)
    (stopped / "progress.json").write_text(after_epoch_1)
    resumed = _fit(_model(), stopped, epochs=3)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _stopping(backup, model):
    stopping = ResumableEarlyStopping(backup, monitor="val_loss", mode="min", patience=1,
                                      restore_best_weights=True)
    stopping.set_model(model)
    stopping.on_train_begin()
    return stopping


def test_early_stoppings_state_and_best_weights_survive_a_restart(tmp_path):
    model = _model()
    stopping = _stopping(tmp_path, model)
    stopping.on_epoch_end(0, {"val_loss": 1.0})
    best = model.get_weights()
    assert ResumableEarlyStopping.stopped_weights(tmp_path) is None  # still training
    model.set_weights([w + 1 for w in best])
    again = _stopping(tmp_path, model)  # a restart before epoch 1
    assert (again.wait, again.best, again.best_epoch) == (0, 1.0, 0)
    again.on_epoch_end(1, {"val_loss": 2.0})  # worse: patience 1 is spent
    assert model.stop_training and again.stopped_epoch == 1
    for saved, expected in zip(ResumableEarlyStopping.stopped_weights(tmp_path), best,
                               strict=True):
        np.testing.assert_array_equal(saved, expected)


def _splits(n=64):
    x, y = _data(n)
    return Splits("seed", x, y.argmax(1), x[:32], y[:32].argmax(1), x[:32], y[:32].argmax(1))


def test_train_best_trains_the_final_epochs_and_keeps_the_history_an_epoch_at_a_time(tmp_path):
    config = config_from_preset("cnn", final_epochs=2)
    model, history = train_best(keras_tuner.HyperParameters(), _splits(), config, verbose=0,
                                backup_dir=tmp_path / "backup",
                                history_path=tmp_path / "history.csv")
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert files.read_history(tmp_path / "history.csv") == history
    assert model.output_shape == (None, 10)


def test_folding_validation_in_trains_on_both_splits_without_validating(tmp_path, monkeypatch):
    seen = []
    # The cnn space fits on its shuffled batches of the images it is given.
    monkeypatch.setattr(keras.Model, "fit", lambda model, batches, validation_data=None, **kw:
                        seen.append((len(batches.x), validation_data))
                        or keras.callbacks.History())
    splits = _splits()
    for fold in (False, True):
        config = config_from_preset("cnn", final_epochs=1).replace(final_patience=None,
                                                                   fold_validation=fold)
        train_best(keras_tuner.HyperParameters(), splits, config, verbose=0)
    (plain, validated), (folded, not_validated) = seen
    assert plain == len(splits.x_train) and len(validated[0]) == len(splits.x_val)
    assert folded == len(splits.x_train) + len(splits.x_val) and not_validated is None


def test_a_flip_averaging_space_returns_a_model_that_answers_alike_for_an_image_and_its_mirror():
    config = config_from_preset("cnn", space="vgg", final_epochs=1, final_patience=None)
    model, history = train_best(keras_tuner.HyperParameters(), _splits(), config, verbose=0)
    assert len(history["loss"]) == 1
    x = _data(4, seed=1)[0]
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               model.predict(x[:, :, ::-1], verbose=0), atol=1e-5)


def test_a_training_killed_after_it_stopped_early_returns_its_best_weights_untrained(tmp_path):
    config = config_from_preset("cnn", final_epochs=5)
    hp = keras_tuner.HyperParameters()
    keras.utils.set_random_seed(config.seed)
    best = [w + 0.5 for w in hypermodel_for(config).build(hp).get_weights()]
    saved = ResumableEarlyStopping(tmp_path)
    np.savez(saved.weights_path, *best)
    files.write_json(saved.state_path, {"wait": 3, "best": 0.7, "best_epoch": 1,
                                        "stopped_epoch": 4})
    files.write_history(tmp_path / "history.csv", {"loss": [1.0, 0.7, 0.8, 0.9, 0.95]})
    model, history = train_best(hp, _splits(), config, verbose=0, backup_dir=tmp_path,
                                history_path=tmp_path / "history.csv")
    assert history == {"loss": [1.0, 0.7, 0.8, 0.9, 0.95]}
    for weights, expected in zip(model.get_weights(), best, strict=True):
        np.testing.assert_array_equal(weights, expected)


def test_train_best_stops_early_on_the_configured_monitor(tmp_path, monkeypatch):
    # The seed preset's: validation accuracy, the higher the better (the default is val_loss).
    seen = []
    original = ResumableEarlyStopping.__init__

    def recording(self, backup_dir, **options):
        seen.append(options)
        original(self, backup_dir, **options)

    monkeypatch.setattr(ResumableEarlyStopping, "__init__", recording)
    config = config_from_preset("cnn", final_epochs=1, final_patience=2,
                                final_monitor="val_accuracy")
    train_best(keras_tuner.HyperParameters(), _splits(), config, verbose=0,
               backup_dir=tmp_path, history_path=tmp_path / "history.csv")
    assert {"monitor": "val_accuracy", "mode": "max", "patience": 2,
            "restore_best_weights": True} in seen


def _tiny_splits(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Splits("seed", x, y, x[:64], y[:64], x[:64], y[:64])


def _cnn_hyperparameters():
    hp = keras_tuner.HyperParameters()
    for name, value in {"conv_blocks": 2, "batch_size": 64, "augment": False}.items():
        hp.Fixed(name, value)
    return hp


@pytest.mark.integration
@pytest.mark.parametrize("preset, hyperparameters", [
    ("seed", notebook_best_hyperparameters), ("cnn", _cnn_hyperparameters)])
def test_a_resumed_final_training_of_the_mlp_and_cnn_spaces_repeats_an_uninterrupted_one(
        tmp_path, preset, hyperparameters):
    # Their batches come in an order that is a function of (seed, epoch), reshuffled each
    # epoch (Keras's own shuffle on TensorFlow repeats one order every epoch once a seed is set).
    splits = _tiny_splits()
    config = config_from_preset(preset, final_epochs=3, final_patience=None)
    histories, weights = [], []
    for name, stops in (("whole", [3]), ("resumed", [1, 3])):
        backup = tmp_path / name
        for epochs in stops:  # a training that ended after epoch 1 resumes as a killed one does
            model, history = train_best(hyperparameters(), splits,
                                        config.replace(final_epochs=epochs), verbose=0,
                                        backup_dir=backup, history_path=backup / "history.csv")
        histories.append(history)
        weights.append(model.get_weights())
    assert histories[0] == histories[1]
    for whole, resumed in zip(*weights, strict=True):
        np.testing.assert_array_equal(whole, resumed)


def test_a_kill_during_keras_backup_resumes_from_the_backup_before_it(tmp_path):
    # Killed while Keras rewrote its files for epoch 3: they may be half written, or hold
    # epoch 3's weights beside epoch 2's count. The copy set aside before it is resumed from.
    straight = _fit(_model(), tmp_path / "straight", epochs=3)
    stopped = tmp_path / "stopped"
    _fit(_model(), stopped, epochs=3)
    progress = json.loads((stopped / "progress.json").read_text())
    (stopped / "progress.json").write_text(json.dumps({**progress, "epochs": 2,
                                                       "backing_up": True}))
    for backed_up in (stopped / "keras").iterdir():
        backed_up.write_bytes(b"half written")
    resumed = _fit(_model(), stopped, epochs=3)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert files.read_history(stopped / "history.csv") == \
        files.read_history(tmp_path / "straight" / "history.csv")
