"""The main job: data, search, final training, evaluation and report into one run directory."""
