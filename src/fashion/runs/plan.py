"""Turn a run's time budget into its network, precision, minutes and epochs on this device.

A budget replaces constants sized for one machine: a short measurement of how many images a
second this device trains each candidate network at decides how big a network the budget
affords and how many epochs it gets, so a faster machine trains a bigger network for longer and
every machine finishes on time (the final training's one-cycle schedule anneals to its deadline
whatever the estimate). `make_plan` is pure given a `measure` function; `plan_run` is the edge
that measures, or reuses the plan a run directory saved so that a resumed run trains what it
started.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from fashion.errors import RunDirError
from fashion.runs.rundir import RunDir
from fashion.spaces.networks import NETWORKS
from fashion.spaces.registry import build_hypermodel, space_class
from fashion.storage.dataset import STANDARD_VAL_SIZE
from fashion.training.config import PLANNED_CHOICES, PLANNED_TIMES, RunConfig
from fashion.training.device import Device, describe, detect_device

# The settings a plan fills in (`apply_plan`).
PLANNED_SETTINGS = (*PLANNED_CHOICES, *PLANNED_TIMES)
# Minutes kept from the budget for loading the data, this measurement, the search's check
# trial, evaluation and the report: 2.5 of 15 (the default preset's runs on 2 cores used 0.5-2.4
# of them, docs/benchmarks.md) and 4 of 60.
RESERVE_BASE_MINUTES, RESERVE_SHARE = 2.0, 1 / 30
# A bigger network is chosen only while it still gets this many epochs: the vgg network's
# one-cycle training was short of its best at 16 epochs (0.935 on the seed split, 2 cores, 15
# minutes) against 50 (0.945), so a network that would get fewer than 30 is not worth its size.
MIN_EPOCHS = 30
# The final training may run this many times the estimated epochs: its one-cycle schedule
# follows the larger of the share of epochs and of time done, so an estimate that came out low
# (a 3-second measurement on a VM whose speed swings) would otherwise end training early, and
# one that came out high is cut by the deadline anyway.
EPOCH_HEADROOM = 1.5
# Past this the schedule is long enough (wide ResNets' published recipes train 200 epochs);
# a very fast device finishes early instead.
MAX_EPOCHS = 200
# bfloat16 compute on a CPU needs bfloat16 instructions (without them it is emulated, slowly)
# and a measurement that it is not slower: on this project's AVX-512 BF16 CPU whole epochs of
# the vgg network trained 1.2-1.8x faster than in float32, while these 3-second measurements
# gave 1.08 and 1.21 (2 cores, idle), too noisy for a higher bar. Accelerators always get it.
BFLOAT16_MIN_SPEEDUP = 1.0
# Seconds each measurement trains for, after the steps that compile.
MEASURE_SECONDS = 3.0
# Predicting an image costs about a third of training on it: validation's share of an epoch.
PREDICT_COST = 1 / 3


@dataclass(frozen=True)
class Plan:
    """How a run spends its budget; printed before work starts, saved in `config.json`."""

    budget_minutes: float
    device: dict  # `Device.to_dict()`
    network: str
    precision: str
    augment_in_graph: bool
    # Training images a second, by "network precision", as measured for this plan.
    images_per_second: dict[str, float]
    reserve_minutes: float
    search_minutes: float
    training_minutes: float
    training_images: int
    epochs: int

    def lines(self) -> list[str]:
        rate = self.images_per_second[f"{self.network} {self.precision}"]
        speed = f"{rate:,.0f} images/s" if rate else "a speed not measured"
        where = "in the model's graph" if self.augment_in_graph else "in NumPy on the host"
        measured = ", ".join(f"{name} {_rate_text(value)}" for name, value in
                             self.images_per_second.items())
        return [
            f"plan for {self.budget_minutes:g} minutes on {describe(self.device)}",
            f"  measured training images/s: {measured}",
            f"  network {self.network} in {self.precision} at {speed}, "
            f"augmented {where}",
            f"  search {self.search_minutes:.1f} min, final training "
            f"{self.training_minutes:.1f} min (about {self.epochs} epochs of "
            f"{self.training_images:,} images), {self.reserve_minutes:.1f} min for the rest",
        ]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, saved: dict | None) -> Plan | None:
        """The plan `config.json` holds; None for a run without one, or from another version
        of fashion whose plan has other fields."""
        try:
            return cls(**saved) if saved else None
        except TypeError:
            return None


def _rate_text(images_per_second: float) -> str:
    return f"{images_per_second:,.0f}" if images_per_second else "not measured"


def make_plan(config: RunConfig, device: Device, measure) -> Plan:
    """Plan `config.budget` on `device`, calling `measure(network, precision, augment_in_graph)
    -> images/s`.

    Settings the config already names (network, precision, augmentation) are kept; the rest
    are chosen: the precision from the first network's measurements, then the biggest network
    (cheapest first, `fashion.spaces.networks.NETWORKS`) that still gets `MIN_EPOCHS`.
    """
    budget = config.budget
    reserve = RESERVE_BASE_MINUTES + RESERVE_SHARE * budget
    search = space_class(config.space).search_share * (budget - reserve)
    training = budget - reserve - search
    images = training_images(config)
    validation = 0 if config.fold_validation else validation_images(config)
    epoch_cost = images + PREDICT_COST * validation

    def epochs_at(rate: float) -> float:
        return 60 * training * rate / epoch_cost

    networks = [config.network] if config.network else list(NETWORKS)
    if config.precision:
        precisions = [config.precision]
    elif device.is_accelerator:
        precisions = ["mixed_bfloat16" if device.bfloat16 else "float32"]
    else:
        precisions = ["float32", "mixed_bfloat16"] if device.bfloat16 else ["float32"]
    augment_in_graph = (config.augment_in_graph if config.augment_in_graph is not None
                        else device.is_accelerator)

    def measure_at(network: str, precision: str) -> float:
        return measure(network, precision, augment_in_graph)

    rates = {f"{networks[0]} {p}": measure_at(networks[0], p) for p in precisions}
    precision = precisions[-1]
    if len(precisions) > 1:
        float32, bfloat16 = (rates[f"{networks[0]} {p}"] for p in precisions)
        # A rate of 0 was not measured (Keras's debugging caps ended it): keep float32.
        speedup = bfloat16 / float32 if float32 else 0.0
        precision = "mixed_bfloat16" if speedup >= BFLOAT16_MIN_SPEEDUP else "float32"
    chosen = networks[0]
    for network in networks[1:]:
        # Not worth measuring where even twice the rate its arithmetic predicts falls short.
        predicted = (rates[f"{chosen} {precision}"] * NETWORKS[chosen].multiply_adds()
                     / NETWORKS[network].multiply_adds())
        if epochs_at(2 * predicted) < MIN_EPOCHS:
            break
        rates[f"{network} {precision}"] = measure_at(network, precision)
        if epochs_at(rates[f"{network} {precision}"]) < MIN_EPOCHS:
            break
        chosen = network
    epochs = min(MAX_EPOCHS, max(1, math.floor(epochs_at(rates[f"{chosen} {precision}"]))))
    return Plan(budget_minutes=budget, device=device.to_dict(), network=chosen,
                precision=precision, augment_in_graph=augment_in_graph,
                images_per_second={k: round(v, 1) for k, v in rates.items()},
                reserve_minutes=round(reserve, 2), search_minutes=round(search, 2),
                training_minutes=round(training, 2), training_images=images, epochs=epochs)


def apply_plan(config: RunConfig, plan: Plan) -> RunConfig:
    """The config a plan runs: its network, precision, minutes and epochs filled in."""
    return config.replace(network=plan.network, precision=plan.precision,
                          augment_in_graph=plan.augment_in_graph,
                          time_budget=plan.search_minutes or None,
                          final_time_budget=plan.training_minutes,
                          final_epochs=epoch_cap(plan.epochs))


def epoch_cap(estimated_epochs: int) -> int:
    """The most epochs the final training may run; its deadline usually ends it first."""
    return min(MAX_EPOCHS, math.ceil(EPOCH_HEADROOM * estimated_epochs))


def training_images(config: RunConfig) -> int:
    """How many images the final training sees, known before the data loads."""
    images = 60_000 - (STANDARD_VAL_SIZE if config.split == "standard" else 0)
    images = min(images, config.limit) if config.limit else images
    return images + (validation_images(config) if config.fold_validation else 0)


def validation_images(config: RunConfig) -> int:
    """How many validation images a run has, known before the data loads."""
    return min(STANDARD_VAL_SIZE, config.limit or STANDARD_VAL_SIZE)


def plan_run(config: RunConfig, run_dir: Path, overwrite: bool = False,
             on_progress=None) -> tuple[RunConfig, Plan | None]:
    """Plan a budgeted run, or reuse the plan of the run `run_dir` holds, and print it.

    Returns the config to run (unchanged without a budget) and the plan (None without one).
    """
    if config.budget is None:
        return config, None
    plan = None if overwrite else saved_plan(run_dir, config)
    if plan is None:
        if on_progress:
            on_progress("[fashion] measuring this device's training speed for the plan")
        plan = make_plan(config, detect_device(), partial(measure_training_speed, config))
    if on_progress:
        for line in plan.lines():
            on_progress(f"[fashion] {line}")
    return apply_plan(config, plan), plan


def saved_plan(run_dir: Path, config: RunConfig) -> Plan | None:
    """The plan an unfinished run of the same budget saved, so a resume trains what it began.

    Raises:
        RunDirError: the run was planned with another network, precision or augmentation than
            the config now names.
    """
    plan = Plan.from_saved(RunDir(run_dir).saved_plan())
    if plan is None or plan.budget_minutes != config.budget:
        return None  # none, another budget's, or another version's: plan afresh
    named = {"network": config.network, "precision": config.precision,
             "augment_in_graph": config.augment_in_graph}
    changed = [f"{name}: {getattr(plan, name)!r} -> {value!r}" for name, value in named.items()
               if value is not None and value != getattr(plan, name)]
    if changed:
        raise RunDirError(f"{run_dir} was planned with other settings "
                                 f"({'; '.join(changed)}); rerun with the same options to "
                                 "resume, or pass --overwrite")
    return plan


def measure_training_speed(config: RunConfig, network: str, precision: str,
                           augment_in_graph: bool, seconds: float = MEASURE_SECONDS) -> float:
    """Train the space's network on random images for `seconds`; return images a second.

    The HyperModel's own build and fit run (augmentation, schedule, compile options), so the
    figure is what the final training will see; random pixels train as fast as real ones.
    """
    hypermodel = build_hypermodel(config.space, seed=config.seed, network=network,
                                  precision=precision, augment_in_graph=augment_in_graph)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    keras.backend.clear_session()
    model = hypermodel.build(hp)
    rng = np.random.default_rng(0)
    # 80 batches: whole executions of the 10 steps `compile_options` runs per call, so no
    # shorter last call recompiles (JAX) inside the timed window.
    x = rng.random((80 * hypermodel.batch_size, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)
    clock = Throughput(seconds, hypermodel.batch_size)
    hypermodel.fit(hp, model, x, y, epochs=10_000, verbose=0, callbacks=[clock])
    keras.backend.clear_session()
    return clock.rate


class Throughput(keras.callbacks.Callback):
    """Time the batches after the first call (which compiles), then stop training."""

    def __init__(self, seconds: float, batch_size: int):
        super().__init__()
        self.seconds, self.batch_size = seconds, batch_size
        self.steps_done = self.steps_before_epoch = 0
        self.start, self.rate = None, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_before_epoch = self.steps_done

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done, now = self.steps_before_epoch + batch + 1, time.perf_counter()
        if self.start is None:
            self.start = (now, self.steps_done)
        elif now - self.start[0] >= self.seconds:
            self._measure(now)
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        # Keras's debugging caps (KERAS_MAX_EPOCHS, KERAS_MAX_STEPS_PER_EPOCH) can end training
        # before `seconds`: time what ran after the first call; with nothing timed, the rate
        # stays 0 ("not measured").
        if not self.rate and self.start is not None and self.steps_done > self.start[1]:
            self._measure(time.perf_counter())

    def _measure(self, now: float) -> None:
        self.rate = (self.steps_done - self.start[1]) * self.batch_size / (now - self.start[0])
