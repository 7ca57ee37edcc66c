"""Train, tune and serve neural networks that recognise clothing in Fashion-MNIST images.

In a notebook::

    import fashion
    result = fashion.run(fashion.config_from_preset("default"), "runs/first")
    result.metrics["test"]["accuracy"], result.model, result.trials
    predictor = fashion.Predictor(fashion.load_model(result.run_dir / "model.keras"))
    photos = fashion.adapt("my-photos", "runs/my-photos")  # a folder of labelled photos

`import fashion` is light: the library's parts load on first use, so the command line starts
fast and a user's choice of Keras backend (KERAS_BACKEND) is still open. Its Keras layers are
registered as soon as Keras is imported, so `keras.saving.load_model` reads fashion's models.
"""

import importlib

import wrapt

__version__ = "0.1.0"

# The Python API: name -> the module that defines it.
API = {
    "CLASS_NAMES": "fashion.storage.classes", "NUM_CLASSES": "fashion.storage.classes",
    "INPUT_SHAPE": "fashion.storage.classes",
    "RunConfig": "fashion.training.config", "config_from_preset": "fashion.training.config",
    "PRESETS": "fashion.training.config", "load_config": "fashion.training.config",
    "run": "fashion.workflow.pipeline", "search": "fashion.workflow.pipeline",
    "RunResult": "fashion.workflow.pipeline", "SearchResult": "fashion.workflow.pipeline",
    "adapt": "fashion.workflow.adapt", "adapt_config": "fashion.training.config",
    "read_photo": "fashion.inference.photos", "PHOTO_SHAPE": "fashion.storage.classes",
    "SearchSpace": "fashion.spaces.base", "register_space": "fashion.spaces.registry",
    "make_plan": "fashion.runs.plan", "Plan": "fashion.runs.plan",
    "detect_device": "fashion.training.device",
    "load_splits": "fashion.storage.dataset", "Splits": "fashion.storage.dataset",
    "load_model": "fashion.inference.model_files",
    "Predictor": "fashion.inference.predict", "load_predictor": "fashion.inference.predict",
    "RoutedPredictor": "fashion.inference.predict", "load_inputs": "fashion.inference.predict",
    "average_of": "fashion.spaces.layers",
    "FusedBatchNormalization": "fashion.spaces.layers",
    "evaluate_model": "fashion.evaluation.evaluate",
    "load_trials": "fashion.tuning.trial_records",
    "write_report": "fashion.evaluation.report",
    "FashionError": "fashion.errors",
}
__all__ = ["__version__", *API]


def __getattr__(name):
    if name in API:
        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module 'fashion' has no attribute {name!r}")


def _register_layers(keras_module) -> None:
    importlib.import_module("fashion.spaces.layers")


# Runs at once if Keras is already imported, else right after it is.
wrapt.register_post_import_hook(_register_layers, "keras")
