"""The prediction measurements of `benchmarks/speed.py`: latency and throughput, Keras and ONNX.

Alone, `python -m benchmarks.speed_prediction MODEL...` prints single-image latency of saved
models (run twice in a row, shipped model first, on a quiet machine: the VM swings).

Run through speed_measurements.py (`predict:cnn`, `predict:shipped`, `onnx`), one fresh
interpreter each. Both paths are `fashion.inference.predict.Predictor`, what `fashion predict` and
`fashion serve` run: a traced Keras forward pass, or ONNX Runtime on the exported model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.speed_measurements import build_model, forward_flops, peak_mib, reset_peak_memory

PREDICT_IMAGES = 10_000
# Batch throughput feeds the 10,000 images in chunks: a single 10,000-image CNN call would
# hold ~1 GB of first-layer activations, and chunks this size already amortise the call cost.
PREDICT_CHUNK = 1000
LATENCY_WARMUP_CALLS = 20


def latency_ms(call, image, calls: int) -> tuple[float, float]:
    """Return p50 and p99 in ms of `call(image)` after a warm-up."""
    for _ in range(LATENCY_WARMUP_CALLS):
        call(image)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call(image)
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def batch_images_per_s(call, images, repeats: int) -> float:
    """Median images/s of predicting all `images` in PREDICT_CHUNK-sized calls."""
    call(images[:PREDICT_CHUNK])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), PREDICT_CHUNK):
            call(images[i:i + PREDICT_CHUNK])
        times.append(time.perf_counter() - start)
    return len(images) / float(np.median(times))


def predict_images(count: int) -> np.ndarray:
    """Test images as the model sees them: float32 (N, 28, 28, 1)."""
    from fashion.storage.dataset import load_fashion_mnist, scale_images

    (_, _), (x_test, _) = load_fashion_mnist()[0]
    images = scale_images(x_test[:count])
    reset_peak_memory()
    return images


def measure_keras_predict(family: str, cfg: dict, onnx_path: str | None) -> dict:
    """Latency and throughput through `Predictor`: the shipped model (`family` "shipped"), or
    an untrained "mlp" or "cnn" (speed does not depend on the weights).

    Then exports it to `onnx_path` for the ONNX Runtime measurement, after reading the peak
    memory so that the export's own memory is not counted.
    """
    from fashion.inference.model_files import load_model
    from fashion.inference.predict import Predictor

    images = predict_images(PREDICT_IMAGES)
    model = load_model() if family == "shipped" else build_model(family, "fashion")[2]
    predict = Predictor(model).warm_up().probabilities
    p50, p99 = latency_ms(predict, images[:1], cfg["latency_calls"])
    throughput = batch_images_per_s(predict, images, cfg["throughput_repeats"])
    result = {"p50_ms": p50, "p99_ms": p99, "images_per_s": throughput, "peak_mib": peak_mib(),
              "flops_per_image": forward_flops(model)}
    if onnx_path:
        result["onnx"] = export_onnx(model, onnx_path)
        # The ONNX Runtime process reads the same images from here, so it needs no TensorFlow.
        np.save(images_path(onnx_path), images)
    return result


def images_path(onnx_path: str) -> Path:
    return Path(onnx_path).with_suffix(".images.npy")


def export_onnx(model, path: str) -> str:
    """Export through Keras's `model.export`, as `fashion export` does; return how."""
    model.export(path, format="onnx", verbose=False)
    return "keras model.export"


def measure_onnx_predict(cfg: dict, onnx_path: str) -> dict:
    import onnxruntime

    from fashion.inference.predict import Predictor

    predict = Predictor(onnx_path).warm_up().probabilities
    images = np.load(images_path(onnx_path))
    reset_peak_memory()

    p50, p99 = latency_ms(predict, images[:1], cfg["latency_calls"])
    throughput = batch_images_per_s(predict, images, cfg["throughput_repeats"])
    return {"p50_ms": p50, "p99_ms": p99, "images_per_s": throughput,
            "onnxruntime": onnxruntime.__version__}


def main(paths: list[str], calls: int = 300) -> None:
    """Single-image latency of saved models, one after another in this process: how a
    candidate for the shipped model is checked against issue 12's 2 ms."""
    from fashion.inference.model_files import load_model
    from fashion.inference.predict import Predictor

    image = predict_images(1)
    for path in paths:
        predict = Predictor(load_model(path)).warm_up().probabilities
        p50, p99 = latency_ms(predict, image, calls)
        print(f"{path}: one image p50 {p50:.2f} ms, p99 {p99:.2f} ms ({calls} calls)", flush=True)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
