"""Train, tune and serve neural networks that recognise clothing in Fashion-MNIST images.

In a notebook::

    import fashion
    result = fashion.run(fashion.config_from_preset("default"), "runs/first")
    result.metrics["test"]["accuracy"], result.model, result.trials
    predictor = fashion.Predictor(fashion.load_model(result.run_dir / "model.keras"))

`import fashion` is light: the library's parts load on first use, so the command line starts
fast and a user's choice of Keras backend (KERAS_BACKEND) is still open. Its Keras layers are
registered as soon as Keras is imported, so `keras.saving.load_model` reads fashion's models.
"""

import importlib

import wrapt

__version__ = "0.1.0"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
INPUT_SHAPE = (28, 28, 1)  # grayscale 28x28, as the dataset

# The Python API: name -> the module that defines it.
API = {
    "RunConfig": "fashion.config", "config_from_preset": "fashion.config",
    "PRESETS": "fashion.config", "load_config": "fashion.config",
    "run": "fashion.pipeline", "search": "fashion.pipeline", "RunResult": "fashion.pipeline",
    "SearchResult": "fashion.pipeline",
    "make_plan": "fashion.plan", "Plan": "fashion.plan", "detect_device": "fashion.device",
    "load_splits": "fashion.data", "Splits": "fashion.data",
    "load_model": "fashion.model_files",
    "Predictor": "fashion.predict", "load_predictor": "fashion.predict",
    "evaluate_model": "fashion.evaluate",
    "load_trials": "fashion.trial_records",
    "write_report": "fashion.report",
    "FashionError": "fashion.errors",
}
__all__ = ["CLASS_NAMES", "NUM_CLASSES", "INPUT_SHAPE", "__version__", *API]


def __getattr__(name):
    if name in API:
        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module 'fashion' has no attribute {name!r}")


def _register_layers(keras_module) -> None:
    importlib.import_module("fashion.layers")


# Runs at once if Keras is already imported, else right after it is.
wrapt.register_post_import_hook(_register_layers, "keras")
