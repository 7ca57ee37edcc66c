"""The hyperparameter search: KerasTuner's tuners and oracles as fashion extends
them, alone or distributed."""
