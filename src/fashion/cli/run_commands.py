"""The commands that make run directories: data, run, tune (alone or distributed) and trials."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def add_commands(commands) -> None:
    """Add data, run, tune and trials: the commands that make run directories."""
    data = commands.add_parser("data", help="show the splits and write a grid of sample images")
    add_data_options(data)
    data.add_argument("--out", type=Path, default=Path("samples.png"),
                      help="where to write the sample grid (default: samples.png)")
    data.add_argument("--json", action="store_true", help="print the splits as JSON")
    data.set_defaults(handler=cmd_data)

    run = commands.add_parser("run", help="the main job: tune, retrain the best, evaluate",
                              epilog=presets_epilog(), formatter_class=_Raw)
    _add_search_options(run)
    run.set_defaults(handler=cmd_run)

    tune = commands.add_parser("tune", help="the search alone, into a run directory",
                               epilog=presets_epilog(), formatter_class=_Raw)
    _add_search_options(tune)
    _add_distributed_options(tune)
    tune.set_defaults(handler=cmd_tune)

    trials = commands.add_parser("trials", help="the trials of a search, best first (also of "
                                 "one still running)")
    trials.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory")
    trials.add_argument("--json", action="store_true", help="print the trials as JSON")
    trials.add_argument("--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
                        help="print the table again every SECONDS (default 5) until the search "
                        "ends; Ctrl-C stops watching")
    trials.set_defaults(handler=cmd_trials)


class _Raw(argparse.RawDescriptionHelpFormatter):
    """Keep the epilog's table as written."""


# What a user may set in the environment, shown under `fashion run --help`.
ENVIRONMENT = {
    "FASHION_MNIST_DIR": "folder of the four original .gz files (instead of --data-dir)",
    "KERAS_BACKEND": "tensorflow (default), jax or torch: the backend Keras trains with",
    "KERAS_HOME": "Keras's cache folder (default ~/.keras), where the data is downloaded",
    "KERAS_MAX_EPOCHS": "debugging: train at most this many epochs in every fit",
    "KERAS_MAX_STEPS_PER_EPOCH": "debugging: train at most this many steps an epoch",
    "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT":
        "a distributed search's role (instead of --chief/--worker)",
    "FASHION_WORKER_TIMEOUT": "chief: seconds before a silent worker is dropped (default 60)",
}


# Settings the presets leave unset, not shown beside them: data, and `fashion adapt`'s.
HIDDEN_SETTINGS = ("preset", "data_dir", "limit", "photo_dir", "photo_holdout",
                   "fashion_mnist_images")


def presets_epilog() -> str:
    """The settings each preset resolves to, and the environment variables read."""
    from fashion.training.config import PRESETS, config_from_preset

    default = config_from_preset("default").to_dict()
    lines = ["presets (every option overrides its preset; `--print-config` shows the result):"]
    for name in PRESETS:
        settings = config_from_preset(name).to_dict()
        shown = settings if name == "default" else {
            k: v for k, v in settings.items() if v != default[k] and k != "preset"}
        lines.append(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in shown.items()
                                                if k not in HIDDEN_SETTINGS))
    lines += ["", "environment:"]
    lines += [f"  {name}: {what}" for name, what in ENVIRONMENT.items()]
    return "\n".join(lines)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder with the four original Fashion-MNIST .gz files "
                        "(default: $FASHION_MNIST_DIR, else Keras's download)")
    parser.add_argument("--split", choices=["seed", "standard"], help="seed: the notebook's "
                        "6,000/4,000 split of the test images; standard: validation from training")
    parser.add_argument("--seed", type=int, help="random seed of the whole run (default 42)")
    parser.add_argument("--limit", type=int, help="use at most this many images per split")


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    from fashion.spaces.networks import NETWORKS
    from fashion.spaces.registry import space_names
    from fashion.training.config import OBJECTIVES, PRECISIONS, PRESETS, TUNERS

    add_data_options(parser)
    parser.add_argument("--preset", default="default", choices=list(PRESETS),
                        help="settings to start from (default: default, the best model 15 minutes "
                        "on 2 cores buy; seed: the notebook's; cnn: a small CNN's search; best: "
                        "the most accurate in an hour on 2 cores)")
    parser.add_argument("--space", choices=space_names(),
                        help="search space (default: the preset's)")
    parser.add_argument("--tuner", choices=TUNERS, help="KerasTuner tuner")
    parser.add_argument("--objective", choices=list(OBJECTIVES), help="what the search optimises")
    parser.add_argument("--max-epochs", type=int, help="epochs of the longest trial")
    parser.add_argument("--factor", type=int, help="Hyperband's reduction factor (>= 2)")
    parser.add_argument("--max-trials", type=int, help="trials of the random/bayesian tuners")
    parser.add_argument("--executions-per-trial", type=int, help="models trained per trial")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="start no new trial after this many minutes")
    parser.add_argument("--search-images", type=int,
                        help="training images the search sees (stratified sample)")
    parser.add_argument("--search-patience", type=int, help="early-stopping patience in trials")
    parser.add_argument("--final-epochs", type=int, help="most epochs of the final training")
    parser.add_argument("--final-patience", type=int, help="early-stopping patience, final")
    parser.add_argument("--final-time-budget", type=float, metavar="MINUTES",
                        help="vgg space: end the final training, annealed, by this many minutes")
    parser.add_argument("--fold-validation", action=argparse.BooleanOptionalAction,
                        help="train the final model on the validation images too, once the "
                        "search has used them; validation figures then describe trained-on "
                        "images (default: the preset's; best folds them in)")
    parser.add_argument("--budget", type=float, metavar="MINUTES",
                        help="minutes for the whole run (vgg spaces): the network, precision, "
                        "search and training minutes and epochs are planned from this device's "
                        "measured speed (default: 15, best preset 60)")
    parser.add_argument("--no-budget", action="store_true",
                        help="drop the preset's budget and take the options above as given")
    parser.add_argument("--network", choices=list(NETWORKS),
                        help="vgg spaces: the network (default: the budget's choice, else vgg)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="vgg spaces: compute precision (default: the budget's choice)")
    parser.add_argument("--augment-in-graph", action=argparse.BooleanOptionalAction,
                        help="vgg spaces: augment in the model's graph instead of NumPy on the "
                        "host (default: on an accelerator)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<timestamp>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what --out holds instead of resuming it")
    parser.add_argument("--print-config", action="store_true",
                        help="print the settings that would run, as JSON, and exit")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the result: no progress lines or bars")


def _add_distributed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed search", "one chief hands out trials to workers over gRPC; all share --out "
        "and the same search options (or set KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, "
        "KERASTUNER_ORACLE_PORT and FASHION_WORKER_TIMEOUT yourself)")
    role = group.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="serve trials to the workers")
    role.add_argument("--worker", metavar="ID", help="run trials from the chief as worker ID")
    group.add_argument("--oracle-host", help="chief: address to listen on (0.0.0.0 for all); "
                       "worker: the chief's address (default: $KERASTUNER_ORACLE_IP or 127.0.0.1)")
    group.add_argument("--oracle-port", type=int, help="the chief's port (default: "
                       "$KERASTUNER_ORACLE_PORT or 8000)")
    group.add_argument("--worker-timeout", type=float, metavar="SECONDS",
                       help="chief: drop a worker silent this long and retry its trial "
                       "(default 60)")


def _config_from_args(args):
    from dataclasses import fields

    from fashion.training.config import RunConfig, config_from_preset

    options = {f.name: getattr(args, f.name, None) for f in fields(RunConfig) if f.name != "preset"}
    return config_from_preset(args.preset, planned=not args.no_budget, **options)


def _command_line() -> str:
    return shlex.join(["fashion", *sys.argv[1:]])


def _print_progress(line: str) -> None:
    print(line, flush=True)


def _progress(args) -> dict:
    """How much to show while working: Keras's progress bar on a terminal, a line per epoch
    into a file or pipe, nothing with --quiet."""
    if args.quiet:
        return {"verbose": 0, "on_progress": None}
    return {"verbose": 1 if sys.stdout.isatty() else 2, "on_progress": _print_progress}


def _role_from_args(args):
    """The process's role: from --chief/--worker, else from KerasTuner's own variables."""
    from fashion.tuning import distribute

    if args.chief:
        return distribute.chief(args.oracle_host, args.oracle_port,
                                args.worker_timeout or distribute.worker_timeout_from_environment())
    if args.worker:
        return distribute.worker(args.worker, args.oracle_host, args.oracle_port)
    return distribute.role_from_environment()


def cmd_data(args) -> int:
    from fashion.evaluation.figures import plot_samples
    from fashion.storage.dataset import class_counts, load_splits
    from fashion.training.config import config_from_preset

    splits = load_splits(config_from_preset(split=args.split, seed=args.seed, limit=args.limit,
                                            data_dir=args.data_dir))
    path = plot_samples(splits.x_train, splits.y_train, args.out)
    parts = {part: (getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}"))
             for part in ("train", "val", "test")}
    if args.json:
        import json

        print(json.dumps({"split": splits.name, "sample_grid": str(path), "data_sha256":
                          splits.data_sha256, **{part: {"shape": list(x.shape),
                                                        "images_per_class": class_counts(y)}
                                                 for part, (x, y) in parts.items()}}, indent=2))
        return 0
    print(f"split: {splits.name}")
    for part, (x, y) in parts.items():
        print(f"x_{part}: {x.shape}  y_{part}: {y.shape}  images per class: {class_counts(y)}")
    print(f"sample grid: {path}")
    return 0


def _print_config(config) -> int:
    import json

    print(json.dumps(config.to_dict(), indent=2))
    return 0


def cmd_run(args) -> int:
    if args.print_config:
        return _print_config(_config_from_args(args))
    from fashion.evaluation.evaluate import format_metrics
    from fashion.tuning.distribute import role_from_environment
    from fashion.workflow.pipeline import run

    result = run(_config_from_args(args), args.out, overwrite=args.overwrite,
                 command=_command_line(), role=role_from_environment(), **_progress(args))
    print(format_metrics(result.metrics["test"]))
    print(f"run directory: {result.run_dir}")
    return 0


def cmd_tune(args) -> int:
    config = _config_from_args(args)
    if args.print_config:
        return _print_config(config)
    from fashion.workflow.pipeline import search

    searched = search(config, args.out, overwrite=args.overwrite, command=_command_line(),
                      role=_role_from_args(args), **_progress(args))
    seconds = searched.tuning_seconds
    if searched.best_hyperparameters is None:
        print(f"worker finished after {seconds:.0f} s; the chief holds the results")
        return 0
    print(f"best hyperparameters after {seconds:.0f} s: {searched.best_hyperparameters.values}")
    print(f"run directory: {searched.run_dir}")
    return 0


def cmd_trials(args) -> int:
    import json
    import time

    from fashion.errors import ConfigError
    from fashion.runs.rundir import RunDir
    from fashion.training.config import OBJECTIVES
    from fashion.tuning.trial_records import format_trials_table, rank_trials

    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch {args.watch} must be a positive number of seconds")
    run = RunDir(args.run_dir)
    objective = run.config().objective if run.has_record() else "val_accuracy"
    while True:
        trials = rank_trials(run.trials(), OBJECTIVES[objective])
        if args.json:
            print(json.dumps(trials, indent=2))
        else:
            if args.watch is not None and sys.stdout.isatty():
                print("\033[H\033[J", end="")  # clear the terminal: the table replaces itself
            print(format_trials_table(trials, objective, OBJECTIVES[objective]), flush=True)
        if args.watch is None or run.search_ended():
            return 0
        print(f"-- {time.strftime('%H:%M:%S')}: watching, Ctrl-C to stop", flush=True)
        time.sleep(args.watch)
