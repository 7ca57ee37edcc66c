"""`fashion.inference.calibrate`: temperature scaling, its errors, the threshold, its file."""

import numpy as np
import pytest

from fashion.errors import ModelError
from fashion.inference.calibrate import (
    Calibration,
    calibrate,
    calibration_path,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    load_calibration,
    write_calibration,
)


def _overconfident(rng, n=4000, temperature=2.0):
    """Outputs whose true temperature is known: labels drawn from softmax(logits), the model
    reports softmax(logits * temperature)."""
    logits = rng.normal(0, 2, (n, 10))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in true])
    sharp = np.exp(logits * temperature)
    return sharp / sharp.sum(1, keepdims=True), labels


def test_temperature_is_recovered_and_the_error_falls():
    probabilities, labels = _overconfident(np.random.default_rng(0))
    assert fit_temperature(probabilities, labels) == pytest.approx(2.0, rel=0.1)
    calibration, record = calibrate(probabilities, labels)
    assert record["ece_after"] < record["ece_before"] / 2
    assert record["nll_after"] < record["nll_before"]
    scaled = calibration.apply(probabilities)
    np.testing.assert_array_equal(scaled.argmax(1), probabilities.argmax(1))  # order kept
    np.testing.assert_allclose(scaled.sum(1), 1.0, rtol=1e-5)


def test_expected_calibration_error_of_a_perfect_and_a_wrong_model():
    labels = np.arange(10)
    sure = np.eye(10)
    assert expected_calibration_error(sure, labels) == 0.0
    assert expected_calibration_error(sure, (labels + 1) % 10) == 1.0


def test_threshold_withholds_answers_right_less_than_half_the_time():
    confidence = np.linspace(0.2, 1.0, 200)
    probabilities = np.zeros((200, 10))
    probabilities[:, 0] = confidence
    probabilities[:, 1:] = ((1 - confidence) / 9)[:, None]
    labels = np.where(confidence < 0.5, 1, 0)  # wrong below 0.5, right above
    threshold = choose_threshold(probabilities, labels)
    # Withheld: the 75 wrong answers and as many right ones, the most the rule allows.
    assert 0.79 < threshold < 0.81
    assert choose_threshold(probabilities, np.zeros(200, int)) == 0.0


def test_a_model_wrong_every_time_withholds_every_answer_and_has_no_accuracy_to_report():
    labels = np.arange(20) % 10
    probabilities = np.full((20, 10), 0.01)
    probabilities[np.arange(20), (labels + 1) % 10] = 0.91  # sure, and always wrong
    calibration, record = calibrate(probabilities, labels)
    assert calibration.threshold == 1.0 and record["not_sure_share"] == 1.0
    assert record["accuracy_answered"] is None


def test_not_sure_below_the_threshold_and_for_blank_images():
    calibration = Calibration(temperature=1.0, threshold=0.6)
    probabilities = np.array([[0.9] + [0.1 / 9] * 9, [0.5] + [0.5 / 9] * 9, [0.9] + [0.1 / 9] * 9])
    images = np.ones((3, 28, 28))
    images[2] = 0.0
    assert calibration.not_sure(probabilities, images).tolist() == [False, True, True]


def test_file_round_trip_missing_and_damaged(tmp_path):
    model = tmp_path / "model.keras"
    assert load_calibration(model) == Calibration()  # no file: the model as it is
    path = write_calibration(model, Calibration(1.5, 0.4), {"images": 10})
    assert path == calibration_path(model) == tmp_path / "model.calibration.json"
    assert load_calibration(model) == Calibration(1.5, 0.4)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="not a calibration file"):
        load_calibration(model)


def test_calibrate_command_writes_the_file_the_predictor_loads(tiny_model_path, tmp_path,
                                                               data_dir, capsys):
    import shutil

    from fashion.cli import main
    from fashion.inference.predict import load_predictor

    model = tmp_path / "tiny.keras"
    shutil.copy(tiny_model_path, model)
    assert main(["calibrate", str(model), "--split", "standard", "--limit", "500",
                 "--data-dir", str(data_dir)]) == 0
    assert "expected calibration error" in capsys.readouterr().out
    saved = load_calibration(model)
    assert 0.05 < saved.temperature < 20 and 0.0 <= saved.threshold <= 1.0
    assert load_predictor(model).calibration == saved
