"""Resident memory of one process over many small trials: does it stay flat?

Runs a random search of N tiny trials (a slice of the data, one epoch of a few steps) in this
process and prints the resident set size after each trial, then start vs end.

    FASHION_MNIST_DIR=../shared/data/fashion-mnist python -m benchmarks.tuner_memory
    python -m benchmarks.tuner_memory --trials 30 --space mlp --steps 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    """Current resident set size of this process (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--space", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--limit", type=int, default=300, help="images per split")
    parser.add_argument("--steps", type=int, default=3, help="steps per epoch")
    args = parser.parse_args()
    # Read by Keras at import, so set before anything imports it.
    os.environ["KERAS_MAX_STEPS_PER_EPOCH"] = str(args.steps)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from fashion.storage.dataset import load_splits
    from fashion.training.config import config_from_preset
    from fashion.tuning.tune import build_tuner, run_search

    config = config_from_preset(space=args.space, tuner="random", max_trials=args.trials,
                                max_epochs=1, limit=args.limit).replace(time_budget=None)
    splits = load_splits(config)
    samples: list[float] = []
    started = time.monotonic()

    def after_trial(line: str) -> None:
        samples.append(rss_mib())
        print(f"trial {len(samples):3d}: RSS {samples[-1]:7.1f} MiB   ({line.split('] ')[1]})",
              flush=True)

    with tempfile.TemporaryDirectory(prefix="tuner-memory-") as run_dir:
        before = rss_mib()
        run_search(build_tuner(config, Path(run_dir)), splits, config, Path(run_dir), verbose=0,
                   on_progress=after_trial)
    first, last = samples[0], samples[-1]
    print(f"\n{len(samples)} {args.space} trials in {time.monotonic() - started:.0f} s: RSS before "
          f"the search {before:.0f} MiB, after trial 1 {first:.0f} MiB, after trial "
          f"{len(samples)} {last:.0f} MiB ({last - first:+.0f} MiB, "
          f"{(last - first) / max(1, len(samples) - 1):+.1f} MiB a trial after the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
