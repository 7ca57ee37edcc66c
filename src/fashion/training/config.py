"""One typed, validated config for every command, and the presets that fill it."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from fashion.errors import ConfigError
from fashion.spaces.networks import NETWORKS
from fashion.spaces.registry import (
    deadline_space_names,
    space_names,
    supports_deadline,
    takes_photos,
)

TUNERS = ("hyperband", "random", "bayesian")
SPLITS = ("seed", "standard")
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min"}
# mixed_float16 is left out: it needs loss scaling, which Keras adds only for a model-wide policy.
PRECISIONS = ("float32", "mixed_bfloat16")
# Fewer minutes than this leave no time to train after loading, measuring and reporting.
MIN_BUDGET_MINUTES = 3.0


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run; saved as `config.json` so a run can be repeated from its folder."""

    preset: str = "default"
    space: str = "cnn"
    tuner: str = "hyperband"
    split: str = "seed"
    objective: str = "val_accuracy"
    # Hyperband: the longest a trial trains; random/bayesian: epochs of every trial.
    max_epochs: int = 9
    factor: int = 3
    # Hyperband sizes itself from max_epochs and factor; the other tuners need a count.
    max_trials: int = 10
    executions_per_trial: int = 1
    # Wall-clock minutes after which no new trial starts; None searches to the end.
    time_budget: float | None = 8.0
    # Patience of EarlyStopping inside each trial; None trains every trial to its epochs.
    search_patience: int | None = 2
    # Training images the search sees (a stratified sample): ranking candidates on a third of
    # the data is about 3x cheaper; the final training uses all of it. None searches on all.
    search_images: int | None = 20000
    final_epochs: int = 15
    # Patience of the final EarlyStopping(restore_best_weights=True); None keeps the last epoch's
    # weights (right for a schedule that anneals to the end, as the vgg space's one-cycle does).
    final_patience: int | None = 3
    # What that EarlyStopping watches and restores the best epoch of. Validation loss moves
    # smoothly where accuracy on 6,000 images moves in steps of 1/6,000; the notebook's final
    # retraining restored its best validation accuracy, so the seed preset watches that.
    final_monitor: str = "val_loss"
    # Wall-clock minutes of the final training (vgg spaces only: their schedule anneals to fit).
    final_time_budget: float | None = None
    # Fold the validation images into the final training once the search has used them: more
    # images to learn from, at the price of the validation figures, which then describe images
    # the model was trained on. Needs final_patience None (early stopping watches validation):
    # the last epoch is kept, where a one-cycle schedule ends.
    fold_validation: bool = False
    # The vgg spaces' network (fashion.spaces.networks; None: "vgg"), compute precision (a Keras
    # dtype policy; None: the space's own) and where augmentation runs (in the model's graph, or
    # NumPy on the host). A --budget chooses those left None for this device (fashion.runs.plan).
    network: str | None = None
    precision: str | None = None
    augment_in_graph: bool | None = None
    # Minutes for the whole run, data to report: the plan turns them into the network, the
    # search's and the final training's minutes and epochs from this device's measured speed.
    budget: float | None = None
    seed: int = 42
    # Cap on images per split (a stratified sample), for smoke tests; None uses them all.
    limit: int | None = None
    data_dir: str | None = None
    # `fashion adapt` (None for a run on the dataset alone): the folder of labelled photos it
    # learns from, the share of them held out for evaluation, and the Fashion-MNIST training
    # images mixed into training so the classes the folder lacks stay known. ADAPT has the
    # defaults.
    photo_dir: str | None = None
    photo_holdout: float | None = None
    fashion_mnist_images: int | None = None

    def __post_init__(self):
        _check_choice("space", self.space, space_names())
        _check_choice("tuner", self.tuner, TUNERS)
        _check_choice("split", self.split, SPLITS)
        _check_choice("objective", self.objective, tuple(OBJECTIVES))
        _check_choice("final monitor", self.final_monitor, tuple(OBJECTIVES))
        _check_at_least("max-epochs", self.max_epochs, 1)
        _check_at_least("factor", self.factor, 2)
        _check_at_least("max-trials", self.max_trials, 1)
        _check_at_least("executions-per-trial", self.executions_per_trial, 1)
        _check_at_least("final-epochs", self.final_epochs, 1)
        if self.final_patience is not None:
            _check_at_least("final-patience", self.final_patience, 0)
            if self.fold_validation:
                raise ConfigError("--fold-validation trains on the validation images, so early "
                                  "stopping cannot watch them; drop --final-patience, or pass "
                                  "--no-fold-validation")
        _check_at_least("seed", self.seed, 0)
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"--time-budget must be a positive number of minutes, got "
                              f"{self.time_budget}; leave it out to search without a budget")
        if self.final_time_budget is not None:
            if not self.final_time_budget > 0:
                raise ConfigError(f"--final-time-budget must be a positive number of minutes, "
                                  f"got {self.final_time_budget}")
            if not supports_deadline(self.space):
                raise ConfigError(f"--final-time-budget needs --space {_deadline_spaces()}, whose "
                                  "learning-rate schedule anneals to fit it; for another "
                                  "space cap training with --final-epochs")
        if self.network is not None:
            _check_choice("network", self.network, tuple(NETWORKS))
        if self.precision is not None:
            _check_choice("precision", self.precision, PRECISIONS)
        if not supports_deadline(self.space):
            pinned = [name for name in PLANNED_CHOICES if getattr(self, name) is not None]
            if pinned:
                raise ConfigError(f"--{pinned[0].replace('_', '-')} shapes the vgg spaces only; "
                                  f"pass --space {_deadline_spaces()}, or leave it out")
        if self.budget is not None:
            if not (math.isfinite(self.budget) and self.budget >= MIN_BUDGET_MINUTES):
                raise ConfigError(f"--budget must be at least {MIN_BUDGET_MINUTES:g} minutes, got "
                                  f"{self.budget}; leave it out to train to --final-epochs")
            if not supports_deadline(self.space):
                raise ConfigError(f"--budget needs --space {_deadline_spaces()}, whose network and "
                                  "schedule a budget can size; for another space use "
                                  "--time-budget and --final-epochs")
        if self.search_patience is not None:
            _check_at_least("search-patience", self.search_patience, 0)
        if self.search_images is not None:
            _check_at_least("search-images", self.search_images, 20)
        if self.limit is not None:
            _check_at_least("limit", self.limit, 20)
        self._check_photos()

    def _check_photos(self) -> None:
        photo_space = takes_photos(self.space)
        if self.photo_dir is None:
            if photo_space:
                raise ConfigError(f"the {self.space} space learns from photos; train it with "
                                  "`fashion adapt PHOTO_DIR`")
            given = [n for n in ("photo_holdout", "fashion_mnist_images") if getattr(self, n)
                     is not None]
            if given:
                raise ConfigError(f"{given[0]} goes with a folder of photos (`fashion adapt "
                                  "PHOTO_DIR`); leave it out")
            return
        if not photo_space:
            raise ConfigError(f"`fashion adapt` trains a space that takes photos; the "
                              f"{self.space} space takes 28x28 images")
        if not (isinstance(self.photo_holdout, (int, float))
                and 0.0 < self.photo_holdout < 1.0):
            raise ConfigError(f"--holdout must be a fraction between 0 and 1, got "
                              f"{self.photo_holdout!r}")
        _check_at_least("fashion-mnist", self.fashion_mnist_images, 0)

    @property
    def objective_direction(self) -> str:
        return OBJECTIVES[self.objective]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)


# What a budget's plan sets (fashion.runs.plan): choices an option may pin, and the minutes and
# epochs, which are not set by hand beside a budget.
PLANNED_CHOICES = ("network", "precision", "augment_in_graph")
PLANNED_TIMES = ("time_budget", "final_time_budget", "final_epochs")

PRESETS: dict[str, dict] = {
    # The notebook's search, exactly: MLP, Hyperband(max_epochs=15, factor=2), no early stopping
    # inside trials; then its final retraining: 20 epochs, keeping the weights of the epoch with
    # the best validation accuracy (a patience of 20 never stops it early, as the notebook's
    # never did).
    "seed": dict(space="mlp", tuner="hyperband", max_epochs=15, factor=2, time_budget=None,
                 search_patience=None, search_images=None, final_epochs=20, final_patience=20,
                 final_monitor="val_accuracy"),
    # 15 minutes spent training one good network rather than searching many (README has
    # figures): a vgg network with every setting fixed (vgg_quick says why), so the search is
    # one 1-epoch trial on 1,280 images that checks the space builds and trains; the budget's
    # plan (fashion.runs.plan) sizes the network, precision and epochs for this device, and on 2 CPU
    # cores gives the final training 12.5 of the 15 minutes.
    "default": dict(space="vgg_quick", tuner="random", max_trials=1, max_epochs=1,
                    time_budget=None, search_patience=None, search_images=1280,
                    final_patience=None, budget=15.0),
    # The default before issue 12, kept for searches of the cnn space: Hyperband over a small
    # CNN on 20,000 images for 8 minutes, then up to 15 epochs (RunConfig's own defaults).
    "cnn": dict(),
    # The most accurate model an hour affords (docs/benchmarks.md has figures): Hyperband ranks
    # the vgg space's training settings on 1-, 3- and 9-epoch runs of 12,000 images for a tenth
    # of the hour, then one-cycle epochs on all 60,000 training images, the validation images
    # folded in once the search has ranked on them; the plan sizes the network and epochs for
    # this device.
    "best": dict(space="vgg", split="standard", max_epochs=9, factor=3,
                 search_patience=None, search_images=12000, final_patience=None, budget=60.0,
                 fold_validation=True),
}


# The settings of `fashion adapt`: the photo space trained for a fixed number of epochs, its
# last epoch's weights kept (the held-out photos are watched, never chosen on); no search.
ADAPT = dict(space="photo", tuner="random", max_trials=1, max_epochs=1, time_budget=None,
             search_patience=None, search_images=None, final_patience=None,
             # 30 epochs: the probe's from-scratch training reached 84.5% in 6 core-minutes.
             final_epochs=30,
             # A fifth held out: 550 of the 2,757 shared photos, enough to judge a class by.
             photo_holdout=0.2,
             # Enough of each class (300) that the folder's missing classes stay known; the
             # probe's 6,000 took as long as the photos themselves.
             fashion_mnist_images=3000)


def adapt_config(photo_dir: str, **overrides) -> RunConfig:
    """Build the config of `fashion adapt` on `photo_dir`, explicit options (not None)
    winning over `ADAPT`."""
    explicit = {k: v for k, v in overrides.items() if v is not None}
    return RunConfig(preset="adapt", **{**ADAPT, **explicit, "photo_dir": str(photo_dir)})


def config_from_preset(preset: str = "default", planned: bool = True, **overrides) -> RunConfig:
    """Build a config from a preset, with explicit options (those not None) winning.

    `planned=False` drops the preset's budget, so minutes and epochs can be set by hand.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    explicit = {k: v for k, v in overrides.items() if v is not None}
    if not planned and "budget" in explicit:
        raise ConfigError("--budget and --no-budget contradict each other; pass one")
    chosen = {**PRESETS[preset], **explicit}
    if not planned:
        chosen.pop("budget", None)
    if "budget" not in explicit and not supports_deadline(chosen.get("space", RunConfig.space)):
        # A preset's budget serves its own vgg space: `--space cnn` from the default preset
        # searches and trains as the cnn preset does instead of being refused.
        chosen.pop("budget", None)
    by_hand = sorted(set(PLANNED_TIMES) & set(explicit))
    if chosen.get("budget") is not None and by_hand:
        options = ", ".join("--" + name.replace("_", "-") for name in by_hand)
        raise ConfigError(f"--budget plans the minutes and epochs itself, so {options} cannot "
                          "go with it; leave them out, or pass --no-budget to set them by hand")
    return RunConfig(preset=preset, **chosen)


def load_config(path: Path) -> RunConfig:
    """Read the config saved in a run directory's `config.json`."""
    try:
        saved = json.loads(Path(path).read_text())["config"]
    except FileNotFoundError as e:
        raise ConfigError(f"{path} is missing; `fashion run` writes it") from e
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a config written by fashion ({e}); rerun `fashion run`") \
            from e
    known = {f.name for f in dataclasses.fields(RunConfig)}
    return RunConfig(**{k: v for k, v in saved.items() if k in known})


def _deadline_spaces() -> str:
    """The spaces that support a deadline, as "vgg or vgg_quick"."""
    *others, last = deadline_space_names()
    return f"{', '.join(others)} or {last}" if others else last


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ConfigError(f"--{name} must be an integer >= {minimum}, got {value!r}")
