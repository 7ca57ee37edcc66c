"""Compile settings per model family and backend, each with the measurement that chose it."""

from __future__ import annotations

import keras

# The families a space may belong to (`SearchSpace.family`), each with its measured settings.
FAMILIES = ("mlp", "cnn")


def compile_options(family: str, backend: str | None = None) -> dict:
    """Return the fastest compile settings measured on a 2-core CPU for a model family.

    MLP: XLA plus 50 steps per execution took the notebook's 504-288-408 MLP from 8.8 s to 4.0 s
    an epoch at batch 32 (TensorFlow 2.21; benchmarks/speed.py: 3.4 s against 9.5 s). CNN: XLA
    does not help convolutions on CPU, so only steps_per_execution is raised to cut per-step
    Python overhead: 21.9 s against 29.8 s an epoch for the default CNN. The torch backend
    accepts neither, so it keeps Keras's defaults.
    """
    backend = backend or keras.backend.backend()
    if backend == "torch":
        return {}
    on_tensorflow = backend == "tensorflow"
    if family == "mlp":
        return {"jit_compile": on_tensorflow or "auto", "steps_per_execution": 50}
    return {"jit_compile": False if on_tensorflow else "auto", "steps_per_execution": 10}
