"""A run's typed config, the device it trains on, and the final training of the best model."""
