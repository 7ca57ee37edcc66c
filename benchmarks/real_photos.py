"""Accuracy of `fashion predict` on a folder of labelled photos laid out as `<class_id>/<file>`.

Goes through the product's own path, `fashion.inference.predict.load_inputs` and a `Predictor`,
so the figures are what a user of `fashion predict` gets. Prints top-1 and top-2 accuracy per class
and overall, the most frequent confusions, and how many answers are "not sure".

    FASHION_MNIST_DIR=../shared/data/fashion-mnist PYTHONPATH=src \
        python -m benchmarks.real_photos ../shared/data/real-photos-dev
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from fashion.inference import garment
from fashion.inference.calibrate import expected_calibration_error
from fashion.inference.model_files import default_model_path
from fashion.inference.predict import (
    RoutedPredictor,
    collect_inputs,
    load_inputs,
    load_predictor,
)
from fashion.storage.classes import CLASS_NAMES, PHOTO_SHAPE


def labelled_files(folder: Path) -> tuple[list[Path], np.ndarray]:
    """Return the image files under `folder`/<class_id>/ and their class ids."""
    files = [p for p in collect_inputs([folder]) if p.parent.name.isdigit()]
    if not files:
        raise SystemExit(f"{folder} holds no <class_id>/<file> images")
    return files, np.array([int(p.parent.name) for p in files])


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Return top-1/top-2 hits per image and the top-1 confusions (true, predicted) counted."""
    ranked = np.argsort(probabilities, axis=1)[:, ::-1]
    top1 = ranked[:, 0] == labels
    top2 = (ranked[:, :2] == labels[:, None]).any(axis=1)
    confusions = Counter((int(t), int(p)) for t, p in zip(labels, ranked[:, 0], strict=True)
                         if t != p)
    return {"top1": top1, "top2": top2, "confusions": confusions}


def format_scores(scores: dict, labels: np.ndarray) -> str:
    """Return a markdown table: each class's top-1 and top-2 hits, then all of them."""
    lines = ["| class | photos | top-1 | top-2 |", "| --- | --- | --- | --- |"]
    for class_id in np.unique(labels):
        rows = labels == class_id
        top1, top2, n = scores["top1"][rows].sum(), scores["top2"][rows].sum(), rows.sum()
        lines.append(f"| {class_id} {CLASS_NAMES[class_id]} | {n} | {top1}/{n} ({top1 / n:.1%}) "
                     f"| {top2}/{n} ({top2 / n:.1%}) |")
    n = len(labels)
    top1, top2 = scores["top1"].sum(), scores["top2"].sum()
    lines.append(f"| **all** | {n} | **{top1}/{n} ({top1 / n:.1%})** | "
                 f"**{top2}/{n} ({top2 / n:.1%})** |")
    common = ", ".join(f"{CLASS_NAMES[t]} -> {CLASS_NAMES[p]} {c}"
                       for (t, p), c in scores["confusions"].most_common(6))
    return "\n".join(lines) + f"\n\nMost frequent confusions: {common or 'none'}."


def twelve_megapixel_jpeg(photo: Path, out: Path) -> Path:
    """Write a 4000x3000 JPEG made from `photo` (upscaled, with sensor-like noise so it
    compresses like a phone's, about 2 MB) and return its path."""
    from PIL import Image

    rng = np.random.default_rng(0)
    big = Image.open(photo).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    noisy = np.asarray(big, np.int16) + rng.integers(-6, 7, (3000, 4000, 3), dtype=np.int16)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, quality=92)
    return out


def write_not_clothing(folder: Path) -> list[Path]:
    """Write five photos that show no garment and return their paths: a face and a landscape
    and a flower from the sample images matplotlib and scikit-learn ship, a blank wall (a
    shaded, noisy beige) and a screenshot (text and boxes), both drawn here."""
    import shutil

    import matplotlib
    import sklearn.datasets
    from PIL import Image, ImageDraw

    samples = Path(sklearn.datasets.__file__).parent / "images"
    shutil.copy(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
                folder / "face.jpg")
    shutil.copy(samples / "china.jpg", folder / "landscape.jpg")
    shutil.copy(samples / "flower.jpg", folder / "flower.jpg")
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:600, 0:800]
    wall = np.stack([200 + 20 * cols / 800, 190 + 20 * rows / 600, 170 + 10 * cols / 800], -1)
    wall += rng.normal(0, 4, wall.shape)
    Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8)).save(folder / "wall.jpg")
    screen = Image.new("RGB", (800, 600), (245, 245, 245))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, 800, 50), fill=(40, 60, 120))
    for line in range(20):
        draw.text((30, 70 + 25 * line), f"Lorem ipsum dolor sit amet, line {line}", fill="black")
    draw.rectangle((560, 80, 780, 300), fill=(200, 220, 250))
    screen.save(folder / "screenshot.png")
    return sorted(folder.iterdir())


def dataset_like(count: int, predictor) -> str:
    """Score the first `count` standard test images as arrays and as the test suite's
    photo-like JPEGs (upscaled, dark on white, off-centre on a larger canvas); return a line."""
    from fashion.storage.dataset import load_fashion_mnist
    from tests.conftest import photo_like  # the test suite's rendering, from the repository root

    (_, _), (x_test, y_test) = load_fashion_mnist()[0]
    x_test, y_test = x_test[:count], y_test[:count]
    as_arrays = predictor.probabilities(x_test / 255.0).argmax(axis=1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{i:04d}.jpg" for i in range(count)]
        for image, path in zip(x_test, paths, strict=True):
            photo_like(image, rng).save(path, quality=90)
        _, images = load_inputs(paths, predictor=predictor)
    as_photos = predictor.probabilities(images).argmax(axis=1)
    return (f"{count} test images: as arrays {(as_arrays == y_test).mean():.1%} right; as "
            f"photo-like JPEGs {(as_photos == y_test).mean():.1%} right, "
            f"{(as_photos == as_arrays).mean():.1%} the arrays' class")


def latency_ms(path: Path, predictor, calls: int) -> list[float]:
    """Time `calls` single-image predictions of `path`, file read to answer, in ms."""
    times = []
    for _ in range(calls + 3):  # the first calls warm caches up
        start = time.perf_counter()
        _, image = load_inputs([path], predictor=predictor)
        predictor.answers(image)
        times.append((time.perf_counter() - start) * 1e3)
    return times[3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="photos in <class_id>/<file> folders")
    parser.add_argument("--model", type=Path, help="default: the shipped model (or pair)")
    parser.add_argument("--photo-model", type=Path, help="route phone photos to this photo "
                        "model and the rest to --model, as the shipped pair does")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a constant of fashion.inference.garment to measure a "
                        "step, e.g. "
                        "GRABCUT_SIDE=96 or PLAIN_BORDER=0 (every photo through the dataset path)")
    parser.add_argument("--dataset-like", type=int, default=0, metavar="N", help="also score "
                        "the first N standard test images as photo-like JPEGs "
                        "(needs $FASHION_MNIST_DIR)")
    parser.add_argument("--latency", type=int, default=0, metavar="CALLS", help="also time "
                        "this many predictions of a 12-megapixel JPEG, end to end")
    args = parser.parse_args()
    for setting in args.set:
        name, value = setting.split("=", 1)
        if not hasattr(garment, name):
            raise SystemExit(f"fashion.inference.garment has no constant {name}")
        setattr(garment, name, ast.literal_eval(value))
    files, labels = labelled_files(args.folder)
    if args.photo_model:  # the 28x28 model alone, not the shipped pair, beside it
        predictor = RoutedPredictor(load_predictor(args.model or default_model_path()),
                                    load_predictor(args.photo_model))
    else:
        predictor = load_predictor(args.model)
    _, images = load_inputs(files, predictor=predictor)  # as `fashion predict` reads them
    probabilities, not_sure = predictor.answers(images)
    print(format_scores(score(probabilities, labels), labels))
    raw = predictor.probabilities(images)
    before, after = (expected_calibration_error(p, labels) for p in (raw, probabilities))
    print(f"\nExpected calibration error on these photos: {before:.3f} as the model says, "
          f"{after:.3f} calibrated.")
    whole = sum(np.shape(image)[-3:] == PHOTO_SHAPE for image in images)
    print(f"Read as phone photos (whole frames, for a photo model): {whole} of {len(labels)}; "
          "the others through the dataset's preprocessing.")
    answered = score(probabilities[~not_sure], labels[~not_sure])
    print(f"\n\"Not sure\": {not_sure.sum()} of {len(labels)} photos; top-1 of the others "
          f"{answered['top1'].mean():.1%} ({answered['top1'].sum()}/{(~not_sure).sum()}).")
    with tempfile.TemporaryDirectory() as folder:
        names, images = load_inputs(write_not_clothing(Path(folder)), predictor=predictor)
        probabilities, not_sure = predictor.answers(images)
    print("\nNot clothing: " + ", ".join(
        f"{Path(name).stem} {'not sure' if flag else 'sure'} ({CLASS_NAMES[p.argmax()]} "
        f"{p.max():.2f})" for name, p, flag in zip(names, probabilities, not_sure, strict=True)))
    if args.dataset_like:
        print("\nDataset-like: " + dataset_like(args.dataset_like, predictor))
    if args.latency:
        with tempfile.TemporaryDirectory() as folder:
            path = twelve_megapixel_jpeg(files[0], Path(folder) / "12mp.jpg")
            times = latency_ms(path, predictor, args.latency)
        print("\n12-megapixel JPEG (4000x3000), "
              f"{args.latency} calls: p50 {np.percentile(times, 50):.0f} ms, "
              f"p90 {np.percentile(times, 90):.0f} ms")


if __name__ == "__main__":
    main()
