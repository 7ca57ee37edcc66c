"""Calibrate a model's confidence (temperature scaling) and choose when to answer "not sure".

A network's softmax is over-confident; one temperature fitted on the validation split (Guo et
al., "On Calibration of Modern Neural Networks", 2017) makes its top probability match how
often it is right, without changing any answer's order. Below a threshold, chosen on the same
validation split, the answer is flagged "not sure". Both live in `<model>.calibration.json`
beside the model, which this module alone reads and writes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from fashion.errors import ModelError
from fashion.storage import files

SUFFIX = ".calibration.json"
ECE_BINS = 15  # Guo et al.'s choice, so figures compare with theirs
# The answers withheld as "not sure" were right less often than this on the validation split:
# withholding them loses more wrong answers than right ones.
TARGET_PRECISION = 0.5
TEMPERATURE_RANGE = (0.05, 20.0)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How to turn a model's probabilities into calibrated ones, and when to say "not sure".

    The defaults change nothing: a model without a calibration file answers as it always did.
    """

    temperature: float = 1.0
    threshold: float = 0.0  # calibrated top-1 probability below which the answer is "not sure"

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Return the probabilities (n, 10) rescaled by the temperature (same order)."""
        return _scale(np.asarray(probabilities, np.float64), self.temperature).astype(np.float32)

    def not_sure(self, calibrated: np.ndarray, images) -> np.ndarray:
        """Flag answers below the threshold, and images with nothing drawn (no garment found);
        `images` an array, or a list of images (of any shapes)."""
        if isinstance(images, np.ndarray):
            blank = ~images.reshape(len(images), -1).any(axis=1) if images.size else \
                np.zeros(len(images), bool)
        else:
            blank = np.array([not np.any(image) for image in images], bool)
        return (calibrated.max(axis=1) < self.threshold) | blank


def _scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    # The shipped model averages two softmaxes (flip averaging), so its logits are not at hand:
    # rescaling log-probabilities is the same family and equals logit scaling for one softmax.
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the true labels."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Return the temperature that minimises the validation negative log-likelihood."""
    probabilities = np.asarray(probabilities, np.float64)
    result = minimize_scalar(
        lambda t: negative_log_likelihood(_scale(probabilities, t), labels),
        bounds=TEMPERATURE_RANGE, method="bounded")
    return float(result.x)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """Return the gap between confidence and accuracy, averaged over equal-width confidence
    bins weighted by their share of the images."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
            for b in range(bins) if (which == b).any()]
    return float(np.sum(gaps))


def choose_threshold(calibrated: np.ndarray, labels: np.ndarray,
                     target: float = TARGET_PRECISION) -> float:
    """Return the highest threshold t such that the validation answers below t, the ones that
    would be withheld as "not sure", are right less often than `target`; 0 if there is none."""
    order = np.argsort(calibrated.max(axis=1))
    confidence = calibrated.max(axis=1)[order]
    correct = (calibrated.argmax(axis=1) == labels)[order]
    withheld_accuracy = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    below = np.flatnonzero(withheld_accuracy < target)
    if not len(below):
        return 0.0
    last = below[-1]  # withhold this answer and every less confident one
    return float(confidence[last + 1] if last + 1 < len(confidence) else 1.0)


def calibrate(probabilities: np.ndarray, labels: np.ndarray) -> tuple[Calibration, dict]:
    """Fit the temperature and threshold on validation outputs; return them and a record of
    expected calibration error and negative log-likelihood before and after."""
    temperature = fit_temperature(probabilities, labels)
    calibrated = _scale(np.asarray(probabilities, np.float64), temperature)
    threshold = choose_threshold(calibrated, labels)
    calibration = Calibration(temperature=temperature, threshold=threshold)
    not_sure = calibrated.max(axis=1) < threshold
    answered = ~not_sure
    record = {
        "images": len(labels),
        "ece_before": expected_calibration_error(probabilities, labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "nll_before": negative_log_likelihood(probabilities, labels),
        "nll_after": negative_log_likelihood(calibrated, labels),
        "not_sure_share": float(not_sure.mean()),
        # None when every answer is withheld: there is no accuracy of none.
        "accuracy_answered": (float((calibrated.argmax(1) == labels)[answered].mean())
                              if answered.any() else None),
    }
    return calibration, record


def calibration_path(model_path: str | Path) -> Path:
    """Where the calibration of a model file lives: beside it, `model.calibration.json`."""
    path = Path(model_path)
    return path.with_name(path.stem + SUFFIX)


def load_calibration(model_path: str | Path) -> Calibration:
    """Return the calibration saved beside a model, or the identity when there is none."""
    path = calibration_path(model_path)
    if not path.is_file():
        return Calibration()
    try:
        saved = json.loads(path.read_text())
        return Calibration(temperature=float(saved["temperature"]),
                           threshold=float(saved["threshold"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path} is not a calibration file ({e}); delete it or write it "
                         "again with `fashion calibrate`") from e


def write_calibration(model_path: str | Path, calibration: Calibration, record: dict) -> Path:
    """Save the calibration and its record beside the model; return the file's path."""
    path = calibration_path(model_path)
    files.write_json(path, {**dataclasses.asdict(calibration), **record})
    return path
