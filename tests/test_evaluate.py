"""Metrics against small hand-made examples whose answers were worked out by hand."""

import json
import math

import numpy as np
import pytest

from fashion.cli import main
from fashion.evaluation.evaluate import (
    compute_metrics,
    format_metrics,
    most_confused_pairs,
    worst_misclassified,
)
from fashion.runs.rundir import MODEL
from fashion.storage.classes import CLASS_NAMES

# Ten images of classes 0-2. Predicted: true 0 -> 0, 0, 1; true 1 -> 1, 1; true 2 -> 2, 2, 2, 0, 1.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0, 1])
# Second guess of each image: the true class for images 2 and 8, class 5 for image 9.
SECOND = np.array([1, 1, 0, 0, 0, 0, 0, 0, 2, 5])


def _probabilities(first, second, confidence=None):
    """Rows of 0.6 on the first guess, 0.3 on the second, 0.0125 on the eight others."""
    p = np.full((len(first), 10), 0.1 / 8)
    p[np.arange(len(first)), first] = 0.6 if confidence is None else confidence
    p[np.arange(len(first)), second] = 0.3
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def metrics():
    return compute_metrics(Y_TRUE, _probabilities(Y_PRED, SECOND), "test")


def test_confusion_matrix_rows_are_true_classes(metrics):
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix[:3, :3].tolist() == [[2, 1, 0], [0, 2, 0], [1, 1, 3]]
    assert matrix[3:].sum() == 0 and matrix[:, 3:].sum() == 0


def test_per_class_and_macro_figures_match_the_hand_computation(metrics):
    # precision = correct / predicted as the class; recall = correct / images of the class.
    precision, recall = [2 / 3, 2 / 4, 3 / 3], [2 / 3, 2 / 2, 3 / 5]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    assert f1 == pytest.approx([2 / 3, 2 / 3, 0.75])
    rows = metrics["per_class"][:3]
    assert [r["precision"] for r in rows] == pytest.approx(precision)
    assert [r["recall"] for r in rows] == pytest.approx(recall)
    assert [r["f1"] for r in rows] == pytest.approx(f1)
    assert [r["support"] for r in rows] == [3, 2, 5]
    assert [r["predicted"] for r in rows] == [3, 4, 3]
    # Macro averages the three classes that occur, not all ten (which would give 0.2083).
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.75) / 3)  # 0.6944
    assert metrics["macro_precision"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert metrics["macro_recall"] == pytest.approx((2 / 3 + 1 + 0.6) / 3)


def test_accuracy_top2_and_loss(metrics):
    assert metrics["accuracy"] == pytest.approx(0.7)
    assert metrics["top2_accuracy"] == pytest.approx(0.9)  # only image 9's true class is 3rd
    p = _probabilities(Y_PRED, SECOND)[np.arange(10), Y_TRUE]
    assert metrics["loss"] == pytest.approx(-np.mean(np.log(p)))
    assert metrics["loss"] == pytest.approx(-(7 * math.log(0.6) + 2 * math.log(0.3)
                                             + math.log(0.0125)) / 10)
    assert metrics["split"] == "test" and metrics["n_images"] == 10


def test_a_class_never_predicted_has_precision_zero_not_an_error():
    y_true = np.array([0, 1, 1])
    metrics = compute_metrics(y_true, _probabilities(np.array([0, 0, 0]), np.array([1, 2, 2])))
    trouser = metrics["per_class"][1]
    assert trouser["label"] == "Trouser"
    assert (trouser["precision"], trouser["recall"], trouser["predicted"]) == (0.0, 0.0, 0)


def test_most_confused_pairs_are_the_largest_off_diagonal_cells():
    matrix = np.diag([50] * 10)
    matrix[6, 0], matrix[4, 2], matrix[2, 4] = 12, 7, 3
    pairs = most_confused_pairs(matrix, n=5)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("Shirt", "T-shirt/top", 12), ("Coat", "Pullover", 7), ("Pullover", "Coat", 3)]
    assert pairs[0]["share"] == pytest.approx(12 / 62)


def test_worst_misclassified_are_the_most_confident_mistakes():
    y_true = np.array([0, 1, 2, 3])
    confidence = np.array([0.9, 0.5, 0.8, 0.7])
    probabilities = _probabilities(np.array([0, 2, 0, 1]), np.array([1, 1, 2, 3]), confidence)
    # Image 0 is right; the mistakes ranked by confidence in the wrong class: 2, 3, 1.
    assert worst_misclassified(y_true, probabilities, n=2).tolist() == [2, 3]
    assert worst_misclassified(y_true, probabilities).tolist() == [2, 3, 1]
    assert worst_misclassified(y_true[:1], probabilities[:1]).tolist() == []


def test_format_metrics_names_every_class(metrics):
    text = format_metrics(metrics)
    assert text.splitlines()[0] == "test split, 10 images"
    assert "accuracy 0.7000" in text and "macro F1 0.6944" in text
    for name in CLASS_NAMES:
        assert name in text


def test_the_shipped_model_scores_the_test_accuracy_recorded_beside_it(raw_arrays):
    """What `fashion evaluate` re-measures on a fresh install: the packaged model and record."""
    from fashion.evaluation.evaluate import evaluate_model
    from fashion.inference.model_files import default_model_path, load_model
    from fashion.storage.dataset import split_data

    record = json.loads(default_model_path().with_suffix(".json").read_text())
    splits = split_data(raw_arrays, record["metrics"]["split"])
    measured = evaluate_model(load_model(), splits.x_test, splits.y_test, "test")
    recorded = record["metrics"]["test"]
    assert measured["n_images"] == recorded["n_images"]
    # Exact up to one image: another CPU's kernels may flip a prediction sitting on a tie.
    assert abs(measured["accuracy"] - recorded["accuracy"]) <= 1 / recorded["n_images"]
    assert measured["loss"] == pytest.approx(recorded["loss"], abs=1e-3)


def test_evaluate_prints_json_that_parses(tiny_run, data_dir, capsys):
    code = main(["evaluate", str(tiny_run / MODEL), "--data-dir", str(data_dir),
                 "--limit", "100", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "seed" and printed["model"].endswith("model.keras")
    test = printed["test"]
    assert test["n_images"] == 100 and len(test["per_class"]) == 10
    assert test["accuracy"] == pytest.approx(np.trace(test["confusion_matrix"]) / 100)


def test_evaluate_prints_the_metrics_table(tiny_run, data_dir, capsys):
    assert main(["evaluate", str(tiny_run / MODEL), "--data-dir", str(data_dir),
                 "--split", "standard", "--limit", "100"]) == 0
    out = capsys.readouterr().out
    assert "data split: standard" in out and "test split, 100 images" in out
    assert "Ankle boot" in out and "macro F1" in out
