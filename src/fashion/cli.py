"""The `fashion` command: parse, build the config, call the library, print a summary."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from fashion.errors import FashionError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out
    try:
        return args.handler(args) or 0
    except FashionError as e:
        print(f"fashion: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nfashion: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error of `fashion`."""

    def error(self, message):
        self.exit(2, f"fashion: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fashion", description=__doc__.split(":")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="show the splits and write a grid of sample images")
    _add_data_options(data)
    data.add_argument("--out", type=Path, default=Path("samples.png"),
                      help="where to write the sample grid (default: samples.png)")
    data.set_defaults(handler=cmd_data)

    run = commands.add_parser("run", help="the main job: tune, retrain the best, evaluate")
    _add_search_options(run)
    run.set_defaults(handler=cmd_run)

    tune = commands.add_parser("tune", help="the search alone, into a run directory")
    _add_search_options(tune)
    _add_distributed_options(tune)
    tune.set_defaults(handler=cmd_tune)
    _add_evaluation_commands(commands)

    _add_predict_parser(commands)
    _add_export_parser(commands)
    _add_serve_parser(commands)

    _add_trials_command(commands)
    return parser


def _add_evaluation_commands(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics of a saved .keras model on the test "
                                   "split")
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a .keras file, e.g. "
                          "RUN_DIR/model.keras (loaded in safe mode)")
    _add_data_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=cmd_evaluate)

    report = commands.add_parser("report", help="rebuild report.html and report.md of a run "
                                 "directory from its saved files")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run directory")
    report.add_argument("--data-dir", help="folder of the Fashion-MNIST .gz files, for the image "
                        "figures (default: the run's, else $FASHION_MNIST_DIR)")
    report.set_defaults(handler=cmd_report)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder with the four original Fashion-MNIST .gz files "
                        "(default: $FASHION_MNIST_DIR, else Keras's download)")
    parser.add_argument("--split", choices=["seed", "standard"], help="seed: the notebook's "
                        "6,000/4,000 split of the test images; standard: validation from training")
    parser.add_argument("--seed", type=int, help="random seed of the whole run (default 42)")
    parser.add_argument("--limit", type=int, help="use at most this many images per split")


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    from fashion.config import OBJECTIVES, PRESETS, SPACES, TUNERS

    _add_data_options(parser)
    parser.add_argument("--preset", default="default", choices=list(PRESETS),
                        help="settings to start from (default: default; seed: the notebook's)")
    parser.add_argument("--space", choices=SPACES, help="search space")
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
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<timestamp>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what --out holds instead of resuming it")


def _config_from_args(args):
    from dataclasses import fields

    from fashion.config import RunConfig, config_from_preset

    options = {f.name: getattr(args, f.name, None) for f in fields(RunConfig) if f.name != "preset"}
    return config_from_preset(args.preset, **options)


def _command_line() -> str:
    return shlex.join(["fashion", *sys.argv[1:]])


def cmd_data(args) -> int:
    from fashion.config import config_from_preset
    from fashion.data import class_counts, load_fashion_mnist, split_data
    from fashion.report import plot_samples

    config = config_from_preset(split=args.split, seed=args.seed, limit=args.limit,
                                data_dir=args.data_dir)
    arrays, _ = load_fashion_mnist(config.data_dir)
    splits = split_data(arrays, config.split, seed=config.seed, limit=config.limit)
    print(f"split: {splits.name}")
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        print(f"x_{part}: {x.shape}  y_{part}: {y.shape}  images per class: {class_counts(y)}")
    path = plot_samples(splits.x_train, splits.y_train, args.out)
    print(f"sample grid: {path}")
    return 0


def cmd_run(args) -> int:
    from fashion.evaluate import format_metrics
    from fashion.pipeline import run

    result = run(_config_from_args(args), args.out, overwrite=args.overwrite,
                 command=_command_line(), report=_report)
    print(format_metrics(result.metrics["test"]))
    print(f"run directory: {result.run_dir}")
    return 0


def _add_distributed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed search", "one chief hands out trials to workers over gRPC; all share --out "
        "and the same search options (or set KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, "
        "KERASTUNER_ORACLE_PORT yourself)")
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


def _set_distributed_environment(args) -> None:
    """Turn --chief/--worker into the KerasTuner variables that select the role."""
    from fashion.distribute import ORACLE_IP, ORACLE_PORT, role_environment

    if not (args.chief or args.worker):
        return
    port = args.oracle_port if args.oracle_port is not None else \
        int(os.environ.get(ORACLE_PORT, 0)) or None
    os.environ.update(role_environment(
        args.chief, args.worker, args.oracle_host or os.environ.get(ORACLE_IP), port,
        args.worker_timeout))


def cmd_tune(args) -> int:
    from fashion.pipeline import search

    config = _config_from_args(args)
    _set_distributed_environment(args)
    run_dir, _, best_hp, seconds = search(config, args.out, overwrite=args.overwrite,
                                          command=_command_line(), report=_report)
    if best_hp is None:
        print(f"worker finished after {seconds:.0f} s; the chief holds the results")
        return 0
    print(f"best hyperparameters after {seconds:.0f} s: {best_hp.values}")
    print(f"run directory: {run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from fashion.config import config_from_preset
    from fashion.data import load_fashion_mnist, split_data
    from fashion.evaluate import evaluate_model, format_metrics
    from fashion.rundir import load_model

    model = load_model(args.model)  # first: a bad model file fails before the data loads
    config = config_from_preset(split=args.split, seed=args.seed, limit=args.limit,
                                data_dir=args.data_dir)
    arrays, _ = load_fashion_mnist(config.data_dir)
    splits = split_data(arrays, config.split, seed=config.seed, limit=config.limit)
    metrics = evaluate_model(model, splits.x_test, splits.y_test, "test")
    if args.json:
        print(json.dumps({"model": str(args.model), "split": splits.name, "test": metrics},
                         indent=2))
    else:
        print(f"model: {args.model}   data split: {splits.name}")
        print(format_metrics(metrics))
    return 0


def cmd_report(args) -> int:
    from fashion.run_report import write_report

    path = write_report(args.run_dir, data_dir=args.data_dir)
    print(f"report: {path} (and {path.with_suffix('.md').name}, figures/)")
    return 0


def _add_predict_parser(commands) -> None:
    from fashion.images import INVERT_CHOICES

    predict = commands.add_parser("predict", help="classify image files, folders of them, or "
                                  ".npy arrays of 28x28 images")
    predict.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                         help="PNG, JPEG, BMP, GIF, WebP or TIFF files, folders, .npy arrays")
    predict.add_argument("--model", type=Path, help="a .keras model, or an .onnx one from "
                         "`fashion export` (default: the shipped model)")
    predict.add_argument("--invert", choices=INVERT_CHOICES, default="auto",
                         help="make the garment light on black: auto (when the background is "
                         "light, the default), always or never")
    predict.add_argument("--top", type=int, default=3, help="classes shown per image (1-10)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.set_defaults(handler=cmd_predict)


def _add_export_parser(commands) -> None:
    from fashion.export import FORMATS

    export = commands.add_parser("export", help="write a model for another runtime")
    export.add_argument("model", type=Path, metavar="MODEL", help="a .keras model")
    export.add_argument("--format", required=True, choices=list(FORMATS),
                        help="onnx: one .onnx file; saved_model: a TensorFlow SavedModel folder")
    export.add_argument("--out", required=True, type=Path, help="where to write it (must not "
                        "exist)")
    export.set_defaults(handler=cmd_export)


def _add_serve_parser(commands) -> None:
    serve = commands.add_parser("serve", help="serve the model over HTTP, with a web page")
    serve.add_argument("--model", type=Path, help="a .keras model, or an .onnx one from "
                       "`fashion export` (default: the shipped model)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.set_defaults(handler=cmd_serve)


def cmd_predict(args) -> int:
    import json

    from fashion.errors import ConfigError
    from fashion.predict import format_table, load_inputs, load_predictor, predictions

    if not 1 <= args.top <= 10:
        raise ConfigError(f"--top {args.top} is out of range; choose 1 to 10")
    names, images = load_inputs(args.paths, args.invert)  # every input checked before the model
    probabilities = load_predictor(args.model).probabilities(images)
    results = predictions(names, probabilities, args.top)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def cmd_export(args) -> int:
    from fashion.export import export_model

    print(f"{args.format} model: {export_model(args.model, args.format, args.out)}")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from fashion.serve import create_app

    app = create_app(args.model)  # loads the model now: a bad one fails before listening
    uvicorn.run(app, host=args.host, port=args.port)


def _report(line: str) -> None:
    print(line, flush=True)


def _add_trials_command(commands) -> None:
    trials = commands.add_parser("trials", help="the trials of a search, best first")
    trials.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory")
    trials.set_defaults(handler=cmd_trials)


def cmd_trials(args) -> int:
    from fashion.config import OBJECTIVES, load_config
    from fashion.rundir import CONFIG
    from fashion.trial_records import format_trials_table, load_trials

    objective = "val_accuracy"
    if (args.run_dir / CONFIG).exists():
        objective = load_config(args.run_dir / CONFIG).objective
    trials = load_trials(args.run_dir)
    print(format_trials_table(trials, objective, OBJECTIVES[objective]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
