"""Export a saved model for other runtimes through Keras's own `Model.export`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from fashion.errors import ConfigError, FashionError
from fashion.inference.model_files import load_model

# Our format names -> Keras's.
FORMATS = {"onnx": "onnx", "saved_model": "tf_saved_model"}
# What Keras's ONNX export imports on the TensorFlow backend.
ONNX_PACKAGES = ("tf2onnx", "onnx")


def export_model(model_path: str | os.PathLike | None, fmt: str, out: Path) -> Path:
    """Write the model at `model_path` (default: the shipped one) to `out` in format `fmt`.

    `onnx` writes one `.onnx` file (input `(n, 28, 28, 1)` float32 in [0, 1], or a photo
    model's `(n, 64, 64, 3)`; output the 10 softmax probabilities); `saved_model` writes a
    TensorFlow SavedModel folder whose `serve` endpoint does the same.

    Raises:
        FashionError: an unknown format, an existing `out`, a missing converter, a bad model.
    """
    import keras

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out.exists():
        raise ConfigError(f"{out} already exists; pass another --out or delete it first")
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if fmt == "onnx" and missing:
        raise FashionError(f"ONNX export needs {' and '.join(missing)}; install them with "
                           "pip install 'fashion[export]'")
    model = load_model(model_path)
    # Exported as called in inference: Keras's export calls the model without `training`, and
    # random augmentation layers (a photo model's) would then take their training path, whose
    # random ops ONNX lacks.
    inputs = keras.Input(model.input_shape[1:])
    model = keras.Model(inputs, model(inputs, training=False), name=model.name)
    # A loaded model has not been called yet, and Keras's ONNX export refuses such models.
    model(np.zeros((1, *model.input_shape[1:]), np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(out), format=FORMATS[fmt], verbose=False)
    return out
