"""A one-cycle learning rate that fits a wall-clock budget."""

from __future__ import annotations

import math
import time

import keras


class OneCycle(keras.callbacks.Callback):
    """Warm the learning rate up to its peak, then anneal it along a cosine to almost zero.

    Smith's one-cycle policy (2018) trains a network in far fewer epochs than a constant rate,
    and ending near zero leaves the last weights the best, so no early stopping is needed.
    Progress is the larger of the share of steps done and the share of time spent before
    `deadline` (a `time.monotonic()` value): on a slower machine the schedule anneals sooner and
    training stops at the deadline, annealed, instead of overrunning it. Keras's `CosineDecay`
    with `warmup_target` draws the same curve over a fixed number of steps, but cannot be
    hurried by a clock.
    """

    def __init__(self, peak: float, deadline: float | None = None, warmup: float = 0.25,
                 start_divisor: float = 25.0, end_divisor: float = 1000.0,
                 first_epoch: int | None = None):
        super().__init__()
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be a share of training in [0, 1), got {warmup}")
        self.peak, self.deadline, self.warmup = peak, deadline, warmup
        self.start, self.end = peak / start_divisor, peak / end_divisor
        # The epoch the cycle starts at: None for the first epoch each fit trains.
        self.cycle_start = first_epoch
        self.started = self.first_epoch = self.epoch = None

    def on_train_begin(self, logs=None):
        if self.params.get("steps") is None:
            raise ValueError("OneCycle needs the number of steps per epoch: pass data of known "
                             "length (an array or a PyDataset) or steps_per_epoch")
        self.started = time.monotonic()
        self.first_epoch = self.cycle_start

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
        self.epoch = epoch - self.first_epoch

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params["steps"]
        total = (self.params["epochs"] - self.first_epoch) * steps
        progress = (self.epoch * steps + batch) / total
        if self.deadline is not None:
            progress = max(progress, (time.monotonic() - self.started)
                           / max(self.deadline - self.started, 1e-9))
        if progress >= 1.0:
            self.model.stop_training = True
        self.model.optimizer.learning_rate = self.rate(min(progress, 1.0))

    def rate(self, progress: float) -> float:
        """The learning rate at a share of training done, from 0 to 1."""
        if progress < self.warmup:
            return self.start + (self.peak - self.start) * progress / self.warmup
        cosine = (1 + math.cos(math.pi * (progress - self.warmup) / (1 - self.warmup))) / 2
        return self.end + (self.peak - self.end) * cosine
