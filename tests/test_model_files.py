"""The one model loader: safe mode, shapes, and a one-line refusal of anything else."""

import re

import pytest

from fashion.cli import main
from fashion.errors import ModelError
from fashion.inference.model_files import load_model


def _lambda_model(path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.save(path)


def _wrong_shape_model(path):
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")]).save(path)


@pytest.mark.parametrize("name, make, message", [
    ("garbage.keras", lambda p: p.write_bytes(b"\x00garbage, not a zip"),
     "is not a Keras model (not a .keras zip archive)"),
    ("lambda.keras", _lambda_model, "needs unsafe deserialisation"),
    ("shape.keras", _wrong_shape_model, "not 28x28x1 images (or 64x64x3 photos) to 10 class "
     "probabilities"),
    ("model.h5", lambda p: p.write_bytes(b"x"), "is not a .keras file"),
    ("absent.keras", lambda p: None, "absent.keras is missing"),
])
def test_evaluate_refuses_a_bad_model_in_one_line(tmp_path, capsys, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(ModelError, match=re.escape(message)):
        load_model(path)
    assert main(["evaluate", str(path), "--data-dir", str(tmp_path / "no-data")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fashion: error: ")
    assert message in err
