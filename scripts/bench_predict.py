"""Latency of one image and throughput of 10,000: fashion's traced call, Keras's `predict`, ONNX
Runtime on the exported model.

    PYTHONPATH=src python scripts/bench_predict.py [MODEL.keras]

Without a model, the CNN of CNNHyperModel's default hyperparameters is built (untrained: speed
does not depend on the weights).
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def p50_ms(call, repeats=200):
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def per_second(call, n, repeats=3):
    """Best of a few runs: on a shared machine the slower runs measure the neighbours."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return n / best


def main():
    import keras
    import keras_tuner
    import onnxruntime

    from fashion.export import export_model
    from fashion.predict import Predictor, load_model
    from fashion.spaces import CNNHyperModel

    folder = Path(tempfile.mkdtemp())
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else folder / "cnn.keras"
    if len(sys.argv) == 1:
        CNNHyperModel().build(keras_tuner.HyperParameters()).save(path)
    model = load_model(path)
    export_model(path, "onnx", folder / "m.onnx")
    predictor = Predictor(model)
    onnx_predictor = Predictor(folder / "m.onnx")
    one = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    many = np.random.default_rng(1).random((10_000, 28, 28, 1), dtype=np.float32)
    runs = {
        "fashion Predictor (traced tf.function)": predictor.probabilities,
        "fashion Predictor (.onnx, ONNX Runtime)": onnx_predictor.probabilities,
        "keras Model.predict": lambda x: model.predict(x, batch_size=1024, verbose=0),
        "keras Model.__call__ (eager)": lambda x: model(x, training=False),
    }
    print(f"model: {path} ({model.count_params():,} parameters), keras "
          f"{keras.__version__}, onnxruntime {onnxruntime.__version__}")
    for label, call in runs.items():
        repeats = 20 if "predict" in label else 200
        print(f"{label:40s} one image p50 {p50_ms(lambda c=call: c(one), repeats):7.2f} ms   "
              f"10,000 images {per_second(lambda c=call: c(many), len(many)):8.0f} /s")


if __name__ == "__main__":
    main()
