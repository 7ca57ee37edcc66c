"""Load and save `.keras` classifiers: one loader for the CLI, the pipeline, the report, the
service and the benchmarks, in Keras's safe mode and with the shapes checked."""

from __future__ import annotations

import os
import zipfile
from importlib import resources
from pathlib import Path

from fashion.errors import ModelError
from fashion.storage.classes import INPUT_SHAPE, NUM_CLASSES, PHOTO_SHAPE

MODEL_HINT = "a .keras file written by `fashion run` or `fashion adapt`"


def default_model_path() -> Path:
    """Return where the model shipped with the package lives (it may be absent in a checkout)."""
    return Path(str(resources.files("fashion") / "models" / "default.keras"))


def photo_model_path() -> Path:
    """Return where the photo model shipped beside the default lives (`fashion adapt`'s), which
    the default predictor routes phone photos to."""
    return default_model_path().with_name("photo.keras")


def resolve_model_path(path: str | os.PathLike | None = None) -> Path:
    """Return the model file named, or the shipped one; refuse a missing file."""
    path = Path(path) if path else default_model_path()
    if path.is_file():
        return path
    if path == default_model_path():
        raise ModelError(f"the shipped model {path} is missing; reinstall fashion or pass "
                         f"--model with {MODEL_HINT}")
    raise ModelError(f"{path} is missing; `fashion run` writes it")


def load_model(path: str | os.PathLike | None = None):
    """Load a `.keras` classifier (default: the shipped one) in safe mode, not compiled.

    Safe mode refuses Python code hidden in the file (a `Lambda` layer's bytecode), so a model
    from elsewhere cannot run code on load; the model is only used to predict.

    Raises:
        ModelError: the file is missing, is not a Keras model, needs unsafe deserialisation,
            or does not map 28x28x1 images (or, a photo model, `PHOTO_SHAPE` photos) to 10
            class probabilities.
    """
    import keras

    import fashion.spaces.layers  # noqa: F401  the layers fashion saves inside models

    path = resolve_model_path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path} is not a .keras file; pass {MODEL_HINT}")
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive; Keras calls others missing
        raise ModelError(f"{path} is not a Keras model (not a .keras zip archive); pass "
                         f"{MODEL_HINT}")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises ValueError, KeyError, OSError... for bad files.
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        if "safe_mode" in str(e):
            raise ModelError(f"{path} needs unsafe deserialisation ({reason[:80]}...); refused: "
                             f"use {MODEL_HINT}") from e
        raise ModelError(f"{path} is not a readable Keras model ({type(e).__name__}: {reason}); "
                         f"pass {MODEL_HINT}") from e
    check_shapes(path, model.input_shape, model.output_shape)
    return model


def check_shapes(path: Path, inputs, outputs) -> None:
    """Refuse a model that is not a Fashion-MNIST classifier of 28x28 images or of photos
    (Keras or ONNX shapes)."""
    def known(shape):  # ONNX names unknown dimensions with strings where Keras uses None
        return [d if isinstance(d, int) else None for d in shape] if shape else shape

    if (not isinstance(inputs, (tuple, list)) or not isinstance(outputs, (tuple, list))
            or known(inputs)[1:] not in (list(INPUT_SHAPE), list(PHOTO_SHAPE))
            or known(outputs)[1:] != [NUM_CLASSES]):
        raise ModelError(f"{path} maps {tuple(inputs or ())} to {tuple(outputs or ())}, not "
                         f"28x28x1 images (or {'x'.join(map(str, PHOTO_SHAPE))} photos) to "
                         f"{NUM_CLASSES} class probabilities; pass a Fashion-MNIST classifier")


def save_model(model, path: Path) -> None:
    """Save a Keras model via a temporary file, so a crash never leaves half a model."""
    path = Path(path)
    partial = path.with_name(f".partial-{path.name}")
    model.save(partial)
    os.replace(partial, path)
