"""The commands that use finished runs and trained models: evaluate, report, compare, predict,
export and serve."""

from __future__ import annotations

from pathlib import Path

from fashion.cli.run_commands import add_data_options


def add_commands(commands) -> None:
    """Add evaluate, report, predict, export and serve: the commands that use a trained model."""
    evaluate = commands.add_parser("evaluate", help="metrics of a saved .keras model on the test "
                                   "split")
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a .keras file, e.g. "
                          "RUN_DIR/model.keras (loaded in safe mode)")
    add_data_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=cmd_evaluate)

    report = commands.add_parser("report", help="rebuild report.html and report.md of a run "
                                 "directory from its saved files")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory; one "
                        "still running or interrupted gets a partial report")
    report.add_argument("--data-dir", help="folder of the Fashion-MNIST .gz files, for the image "
                        "figures (default: the run's, else $FASHION_MNIST_DIR)")
    report.set_defaults(handler=cmd_report)

    compare = commands.add_parser("compare", help="finished runs side by side: which is better, "
                                  "and what differed")
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                         help="two or more finished run directories")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.add_argument("--out", type=Path, default=Path("compare.html"),
                         help="the HTML page with every run's curves (default: compare.html)")
    compare.set_defaults(handler=cmd_compare)

    calibrate = commands.add_parser("calibrate", help="fit temperature scaling and the \"not "
                                    "sure\" threshold on the validation split")
    calibrate.add_argument("model", type=Path, metavar="MODEL", help="a .keras model; writes "
                           "MODEL's name + .calibration.json beside it (a photo model: fitted "
                           "on the photos its `fashion adapt` run held out; the data options "
                           "do not apply)")
    add_data_options(calibrate)
    calibrate.set_defaults(handler=cmd_calibrate)

    _add_predict_parser(commands)
    _add_export_parser(commands)
    _add_serve_parser(commands)


def _add_predict_parser(commands) -> None:
    from fashion.inference.images import INVERT_CHOICES

    predict = commands.add_parser("predict", help="classify image files, folders of them, or "
                                  ".npy arrays of 28x28 images")
    predict.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                         help="PNG, JPEG, BMP, GIF, WebP or TIFF files, folders, .npy arrays")
    predict.add_argument("--model", type=Path, help="a .keras model, or an .onnx one from "
                         "`fashion export` (default: the shipped models, phone photos to the photo "
                         "model)")
    predict.add_argument("--invert", choices=INVERT_CHOICES, default="auto",
                         help="make the garment light on black: auto (when the background is "
                         "light, the default), always or never")
    predict.add_argument("--top", type=int, default=3, help="classes shown per image (1-10)")
    predict.add_argument("--threshold", type=float, help="answer \"not sure\" below this "
                         "calibrated probability, for every model (default: each model's "
                         "own, chosen on held-out images)")
    predict.add_argument("--show", type=Path, metavar="DIR", help="write the image the model "
                         "saw for each input into DIR, as <input name>.28x28.png (a photo "
                         "model's photo: .64x64.png)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--quiet", action="store_true", help="no progress bar while reading")
    predict.set_defaults(handler=cmd_predict)


def _add_export_parser(commands) -> None:
    from fashion.inference.export import FORMATS

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
                       "`fashion export` (default: the shipped models, phone photos to the photo "
                         "model)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.set_defaults(handler=cmd_serve)


def cmd_evaluate(args) -> int:
    import json

    from fashion.evaluation.evaluate import evaluate_model, format_metrics
    from fashion.inference.model_files import load_model
    from fashion.storage.dataset import load_splits
    from fashion.training.config import config_from_preset

    model = load_model(args.model)  # first: a bad model file fails before the data loads
    splits = load_splits(config_from_preset(split=args.split, seed=args.seed, limit=args.limit,
                                            data_dir=args.data_dir))
    metrics = evaluate_model(model, splits.x_test, splits.y_test, "test")
    if args.json:
        print(json.dumps({"model": str(args.model), "split": splits.name, "test": metrics},
                         indent=2))
    else:
        print(f"model: {args.model}   data split: {splits.name}")
        print(format_metrics(metrics))
    return 0


def cmd_calibrate(args) -> int:
    from fashion.inference.calibrate import calibrate, write_calibration
    from fashion.inference.model_files import load_model
    from fashion.inference.predict import Predictor
    from fashion.storage.classes import PHOTO_SHAPE
    from fashion.storage.dataset import load_splits
    from fashion.training.config import config_from_preset

    model = load_model(args.model)
    if tuple(model.input_shape[1:]) == PHOTO_SHAPE:
        from fashion.workflow.adapt import calibrate_photo_model

        calibration, record, path = calibrate_photo_model(args.model, model)
        what = f"the run's held-out photos ({record['images']:,})"
    else:
        splits = load_splits(config_from_preset(split=args.split, seed=args.seed,
                                                limit=args.limit, data_dir=args.data_dir))
        # Uncalibrated: what is being calibrated.
        calibration, record = calibrate(Predictor(model).probabilities(splits.x_val),
                                        splits.y_val)
        path = write_calibration(args.model, calibration, record)
        what = f"validation ({splits.name} split, {record['images']:,} images)"
    answered = record["accuracy_answered"]
    print(f"{what}: temperature {calibration.temperature:.3f}, expected calibration error "
          f"{record['ece_before']:.4f} -> {record['ece_after']:.4f}; \"not sure\" below "
          f"{calibration.threshold:.3f} ({record['not_sure_share']:.1%} of them, accuracy of "
          f"the rest {'-' if answered is None else f'{answered:.4f}'}) -> {path}")
    return 0


def cmd_report(args) -> int:
    from fashion.evaluation.report import write_partial_report, write_report
    from fashion.runs.rundir import RunDir

    if RunDir(args.run_dir).is_partial():
        path = write_partial_report(args.run_dir)
        print(f"partial report (the run has not finished): {path} (and "
              f"{path.with_suffix('.md').name}, figures/)")
        return 0
    path = write_report(args.run_dir, data_dir=args.data_dir)
    print(f"report: {path} (and {path.with_suffix('.md').name}, figures/)")
    return 0


def cmd_compare(args) -> int:
    import json

    from fashion.errors import ConfigError
    from fashion.evaluation.compare import (
        compare_runs,
        format_comparison,
        read_run,
        write_comparison_page,
    )

    if len(args.run_dirs) < 2:
        raise ConfigError("compare needs two or more run directories")
    runs = [read_run(path) for path in args.run_dirs]
    comparison = compare_runs(runs)
    page = write_comparison_page(runs, comparison, args.out)
    if args.json:
        print(json.dumps(comparison, indent=2))
    else:
        print(format_comparison(comparison))
        print(f"\npage with the curves: {page}")
    return 0


def cmd_predict(args) -> int:
    import json

    from fashion.errors import ConfigError
    from fashion.inference.answers import format_table, predictions, write_inputs
    from fashion.inference.predict import load_inputs, load_predictor

    if not 1 <= args.top <= 10:
        raise ConfigError(f"--top {args.top} is out of range; choose 1 to 10")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold} is out of range; choose 0 to 1")
    if args.show and args.show.exists() and not args.show.is_dir():
        raise ConfigError(f"--show {args.show} is a file; name a folder for the images the "
                          "model saw")
    # The model first: it says how to read the inputs (a photo model's photos, the shipped
    # pair's routes). Every input is read and checked before any is scored.
    predictor = load_predictor(args.model)
    names, images = load_inputs(args.paths, args.invert, track=_progress_bar("reading", args),
                                predictor=predictor)
    probabilities, not_sure = predictor.answers(images, args.threshold)
    results = predictions(names, probabilities, args.top, not_sure)
    if args.show:
        for result, path in zip(results, write_inputs(args.show, names, images), strict=True):
            result["input"] = str(path)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _progress_bar(description: str, args):
    """Wrap a list in rich's progress bar on a terminal's stderr (stdout may be JSON); none
    with --quiet, into a file or pipe, or for a handful of items."""
    import sys

    def track(items):
        if args.quiet or not sys.stderr.isatty() or len(items) < 20:
            return items
        from rich.console import Console
        from rich.progress import track as rich_track

        return rich_track(items, description=description, console=Console(stderr=True),
                          transient=True)

    return track


def cmd_export(args) -> int:
    from fashion.inference.export import export_model

    print(f"{args.format} model: {export_model(args.model, args.format, args.out)}")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from fashion.service.serve import create_app

    app = create_app(args.model)  # loads the model now: a bad one fails before listening
    uvicorn.run(app, host=args.host, port=args.port)
