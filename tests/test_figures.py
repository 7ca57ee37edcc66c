"""The figures, drawn from hand-made trials and histories."""

from fashion.evaluation.figures import kept_epoch, plot_hyperparameter_effects, plot_tuning_history

PNG = b"\x89PNG\r\n\x1a\n"


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
