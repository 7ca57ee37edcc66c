"""The base class of a search space: a KerasTuner HyperModel that declares what a run asks of it."""

from __future__ import annotations

from typing import ClassVar

import keras_tuner

from fashion.spaces import compile_options as measured
from fashion.storage.classes import INPUT_SHAPE


class SearchSpace(keras_tuner.HyperModel):
    """A search space: `build(hp)` returns a compiled model, `fit` trains it.

    Subclass it, set the class attributes below that differ from their defaults, and register
    the class with `fashion.register_space`; config, plan, training, report and CLI read these
    attributes and nothing else. As in KerasTuner, `fit(hp, model, *args, **kwargs)` tunes what
    `fit` owns (batch size, augmentation) and passes `**kwargs` on: the tuner's callbacks come
    through them.

    Every space is built with the same arguments (`fashion.spaces.registry.build_hypermodel`);
    one that has no use for one ignores it.

    Args:
        seed: seeds what the space draws at random (augmentation, shuffling).
        network: the network a deadline space trains (`fashion.spaces.networks`; None: its own).
        precision: a Keras dtype policy for a deadline space; None keeps the space's own.
        augment_in_graph: augment inside the model instead of on the host (deadline spaces).
    """

    # The key the space is registered and chosen by (`--space`, `RunConfig.space`).
    name: ClassVar[str] = ""
    # Which measured compile settings `compile_options` gives its models: "mlp" or "cnn".
    family: ClassVar[str] = "cnn"
    # The trained model answers for each image and its mirror, averaged (`with_flip_averaging`):
    # right only for a space that trained on flipped images.
    averages_flips: ClassVar[bool] = False
    # Settings fixed by evidence instead of searched, as hyperparameter name -> value; the
    # report lists them. Read it; do not change it in place.
    fixed: ClassVar[dict] = {}
    # The batch size `fit` trains at, or None where `fit` chooses it (tuned, or Keras's
    # default). A budget's plan measures the speed at this size, so a deadline space sets one.
    batch_size: ClassVar[int | None] = None
    # `fit` takes a `deadline` (a `time.monotonic()` time) and anneals its schedule to end by
    # it, so `--budget`, `--final-time-budget`, `--network`, `--precision` and
    # `--augment-in-graph` apply to the space.
    supports_deadline: ClassVar[bool] = False
    # The share of a budget, after its reserve, that the search gets (deadline spaces only).
    search_share: ClassVar[float] = 0.0
    # What its models take: Fashion-MNIST's 28x28 grey images, or `PHOTO_SHAPE` colour photos,
    # which `fashion adapt` trains on (`fashion run` on the dataset).
    input_shape: ClassVar[tuple[int, int, int]] = INPUT_SHAPE

    def __init__(self, seed: int = 0, network: str | None = None, precision: str | None = None,
                 augment_in_graph: bool = False):
        super().__init__(name=self.name)
        self.seed = seed

    def compile_options(self) -> dict:
        """Return the compile settings measured fastest for the space's `family` on this backend,
        as keyword arguments of `model.compile` (`fashion.spaces.compile_options`)."""
        return measured.compile_options(self.family)

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Declare what `fit` chooses, so the tuner knows the whole space before a trial.

        KerasTuner learns a space by calling `build` alone; a space whose `fit` draws
        hyperparameters (batch size, augmentation) declares them here too, or the first trial
        runs them untuned and a resumed search sees another space. The default declares none.
        """
