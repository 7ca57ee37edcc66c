"""The command that learns from the user's own photos: adapt."""

from __future__ import annotations

from pathlib import Path

from fashion.cli.run_commands import _command_line, _progress


def add_commands(commands) -> None:
    """Add adapt: train a photo model on a folder of labelled photos."""
    from fashion.training.config import ADAPT

    adapt = commands.add_parser(
        "adapt", help="learn from a folder of labelled photos: hold part out, train a photo "
        "model, evaluate on what was held out",
        description="PHOTO_DIR holds one sub-folder of photos per class, named by Fashion-MNIST "
        "class id (0-9) or label (tshirt, trouser, pullover, dress, coat, sandal, shirt, "
        "sneaker, bag, ankle boot; case and punctuation ignored). A groups.csv (file,group) or "
        "a labels.csv with a sender_id column beside them holds each group out whole.")
    adapt.add_argument("photo_dir", type=Path, metavar="PHOTO_DIR",
                       help="the folder of labelled photos")
    adapt.add_argument("--out", type=Path, help="run directory (default: runs/<timestamp>)")
    adapt.add_argument("--epochs", type=int,
                       help=f"epochs of training (default {ADAPT['final_epochs']})")
    adapt.add_argument("--holdout", type=float, metavar="FRACTION",
                       help="share of the photos held out for evaluation (default "
                       f"{ADAPT['photo_holdout']})")
    adapt.add_argument("--fashion-mnist", type=int, metavar="N",
                       help="Fashion-MNIST training images mixed into training, so classes the "
                       f"folder lacks stay known (default {ADAPT['fashion_mnist_images']:,}; 0: "
                       "none, and no dataset needed)")
    adapt.add_argument("--seed", type=int, help="random seed of the training (default 42); the "
                       "held-out photos are the same for every seed")
    adapt.add_argument("--data-dir", help="folder with the four original Fashion-MNIST .gz "
                       "files (default: $FASHION_MNIST_DIR, else Keras's download)")
    adapt.add_argument("--overwrite", action="store_true",
                       help="replace what --out holds instead of resuming it")
    adapt.add_argument("--quiet", action="store_true",
                       help="print only the result: no progress lines or bars")
    adapt.set_defaults(handler=cmd_adapt)


def cmd_adapt(args) -> int:
    from fashion.evaluation.evaluate import format_metrics
    from fashion.workflow.adapt import adapt

    result = adapt(args.photo_dir, args.out, epochs=args.epochs, holdout=args.holdout,
                   fashion_mnist=args.fashion_mnist, seed=args.seed, data_dir=args.data_dir,
                   overwrite=args.overwrite, command=_command_line(), **_progress(args))
    print(format_metrics(result.metrics["test"]))
    print(f"run directory: {result.run_dir}")
    return 0
