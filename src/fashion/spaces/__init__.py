"""Search spaces: KerasTuner HyperModels, the networks they build and how they augment, and the
registry that names them."""
