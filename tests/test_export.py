"""`fashion export`: ONNX and SavedModel artefacts that give the model's own outputs."""

import numpy as np
import pytest

from fashion.cli import main
from fashion.errors import ConfigError, FashionError
from fashion.inference.export import export_model
from fashion.inference.model_files import load_model, save_model
from fashion.inference.predict import Predictor, load_predictor


@pytest.fixture(scope="module")
def hundred_images(test_images):
    return (test_images[0][:100] / np.float32(255.0))[..., None]


@pytest.fixture(scope="module")
def keras_outputs(tiny_model_path, hundred_images):
    return Predictor(load_model(tiny_model_path)).probabilities(hundred_images)


def test_onnx_runtime_matches_keras(tmp_path, tiny_model_path, hundred_images, keras_outputs,
                                    capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tiny_model_path), "--format", "onnx", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"onnx model: {out}"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    [onnx_outputs] = session.run(None, {session.get_inputs()[0].name: hundred_images})
    np.testing.assert_allclose(onnx_outputs, keras_outputs, atol=1e-4, rtol=0)
    # `predict` and `serve` run the exported file through ONNX Runtime too.
    np.testing.assert_allclose(load_predictor(out).probabilities(hundred_images[..., 0]),
                               keras_outputs, atol=1e-4, rtol=0)


def test_saved_model_matches_keras(tmp_path, tiny_model_path, hundred_images, keras_outputs):
    import tensorflow as tf

    out = export_model(tiny_model_path, "saved_model", tmp_path / "saved")
    loaded = tf.saved_model.load(str(out))  # kept: its variables die with it
    outputs = loaded.serve(hundred_images).numpy()
    np.testing.assert_allclose(outputs, keras_outputs, atol=1e-5, rtol=0)


def test_export_refuses_to_overwrite_and_names_missing_converters(tmp_path, tiny_model_path,
                                                                  monkeypatch):
    (tmp_path / "taken.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match="taken.onnx already exists; pass another --out"):
        export_model(tiny_model_path, "onnx", tmp_path / "taken.onnx")
    assert (tmp_path / "taken.onnx").read_bytes() == b""
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_model(tiny_model_path, "tflite", tmp_path / "m.tflite")
    monkeypatch.setattr("fashion.inference.export.ONNX_PACKAGES", ("onnx", "no_such_converter"))
    with pytest.raises(FashionError, match=r"needs no_such_converter; .*fashion\[export\]"):
        export_model(tiny_model_path, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_flip_averaged_model_exports_to_onnx_with_its_own_outputs(tmp_path, tiny_model_path,
                                                                    hundred_images):
    onnxruntime = pytest.importorskip("onnxruntime")
    from fashion.spaces.layers import with_flip_averaging

    averaged = tmp_path / "averaged.keras"
    save_model(with_flip_averaging(load_model(tiny_model_path)), averaged)
    expected = Predictor(load_model(averaged)).probabilities(hundred_images)
    export_model(averaged, "onnx", tmp_path / "averaged.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "averaged.onnx"),
                                           providers=["CPUExecutionProvider"])
    [outputs] = session.run(None, {session.get_inputs()[0].name: hundred_images})
    np.testing.assert_allclose(outputs, expected, atol=1e-4, rtol=0)
    # The mirror counts: the averaged answers differ from the plain model's.
    assert np.abs(outputs - Predictor(load_model(tiny_model_path))
                  .probabilities(hundred_images)).max() > 1e-3
