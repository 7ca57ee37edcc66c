"""`fashion predict`: real images through files, photo-like copies, every refused input."""

import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import photo_like
from PIL import Image

from fashion.cli import main
from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    ModelError,
    UnsupportedInputError,
)
from fashion.inference.images import MAX_BYTES, open_image, read_array_file, to_fashion_mnist
from fashion.inference.model_files import load_model
from fashion.inference.predict import Predictor, RoutedPredictor, load_inputs, load_predictor
from fashion.storage.classes import CLASS_NAMES


@pytest.fixture(scope="module")
def predictor(tiny_model_path):
    return Predictor(load_model(tiny_model_path))


@pytest.fixture(scope="module")
def array_classes(predictor, test_images):
    """What the model says about the test images given directly as arrays."""
    return predictor.probabilities(test_images[0] / 255.0).argmax(axis=1)


def test_pngs_of_test_images_get_the_classes_of_the_arrays(
        tmp_path, predictor, test_images, array_classes):
    for i, image in enumerate(test_images[0]):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    names, images = load_inputs([tmp_path])
    assert names == [str(tmp_path / f"{i:03d}.png") for i in range(200)]
    np.testing.assert_array_equal(images, test_images[0] / np.float32(255.0))
    assert (predictor.probabilities(images).argmax(axis=1) == array_classes).all()


def test_photo_like_copies_mostly_keep_their_class(tmp_path, predictor, test_images,
                                                   array_classes):
    rng = np.random.default_rng(0)
    for i, image in enumerate(test_images[0]):
        photo_like(image, rng).save(tmp_path / f"{i:03d}.jpg", quality=90)
    _, images = load_inputs([tmp_path])
    classes = predictor.probabilities(images).argmax(axis=1)
    agreement = (classes == array_classes).mean()
    assert agreement >= 0.85, agreement
    # And they are right about as often as the arrays themselves.
    labels = test_images[1]
    assert (classes == labels).mean() >= (array_classes == labels).mean() - 0.08


def test_preprocessing_trims_fits_centres_and_inverts():
    photo = Image.new("RGB", (300, 200), (250, 250, 250))
    photo.paste((30, 30, 30), (40, 20, 90, 120))  # a dark 50x100 garment, off-centre
    pixels = to_fashion_mnist(photo)
    columns = np.flatnonzero(pixels.max(axis=0) > 0.5)
    rows = np.flatnonzero(pixels.max(axis=1) > 0.5)
    assert rows.tolist() == list(range(28))  # longest side fitted to 28
    assert len(columns) == 14 and columns[0] == 7  # aspect kept, centred
    assert pixels[:, :6].max() == 0.0 and pixels[:, 22:].max() == 0.0  # black background
    assert pixels.max() == pytest.approx(1.0)


def test_invert_options_and_transparent_background():
    dark_on_white = Image.new("L", (60, 60), 255)
    dark_on_white.paste(0, (20, 10, 40, 50))
    auto = to_fashion_mnist(dark_on_white)
    assert auto[14, 14] == pytest.approx(1.0) and auto[0, 0] == 0.0
    np.testing.assert_array_equal(to_fashion_mnist(dark_on_white, "always"), auto)
    assert to_fashion_mnist(dark_on_white, "never")[14, 14] == 0.0
    cut_out = Image.new("RGBA", (60, 60), (0, 0, 0, 0))  # transparent counts as white
    cut_out.paste((0, 0, 0, 255), (20, 10, 40, 50))
    np.testing.assert_allclose(to_fashion_mnist(cut_out), auto, atol=1e-6)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_supported_format_reads(fmt):
    image = Image.new("RGB", (90, 120), "white")
    image.paste((20, 20, 20), (30, 20, 60, 100))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    pixels = to_fashion_mnist(open_image(buffer.getvalue(), f"x.{fmt.lower()}"))
    assert pixels.shape == (28, 28) and pixels[14, 14] > 0.9 and pixels[14, 0] < 0.05


def _png_header_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge size: Pillow refuses it before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b""))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# Built lazily: some are large, and collection should stay fast.
@pytest.mark.parametrize("make, error, message", [
    (lambda: b"", EmptyInputError, r"x is empty \(0 bytes\)"),
    (lambda: b"%PDF-1.4 not an image", UnsupportedInputError, "x is not an image; pass a PNG"),
    (lambda: b"P6 2 2 255 " + bytes(12), UnsupportedInputError, "x is a PPM image; pass a PNG"),
    (lambda: _png(Image.new("RGB", (200, 200), "red"))[:-40], CorruptInputError,
     "x is a truncated or damaged PNG image"),
    (lambda: _png_header_claiming(20000, 20000), InputTooLargeError, "x is a decompression bomb"),
    (lambda: _png(Image.new("1", (8000, 7000))), InputTooLargeError,
     "x has 8000x7000 pixels, over the limit of 50,000,000"),
    (lambda: b"\0" * (MAX_BYTES + 1), InputTooLargeError, "over the limit of 20,971,520"),
], ids=["empty", "not-image", "unsupported", "truncated", "bomb-header", "bomb-pixels", "bytes"])
def test_bad_images_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        open_image(make(), "x")


def test_oversize_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputTooLargeError, match="huge.png has 20,971,521 bytes"):
        load_inputs([path])


def test_npy_arrays_in_every_accepted_shape(tmp_path, test_images):
    images = test_images[0][:3]
    np.save(tmp_path / "one.npy", images[0])
    np.save(tmp_path / "many.npy", images)
    np.save(tmp_path / "channel.npy", images[..., None].astype(np.float32) / 255)
    names, loaded = load_inputs([tmp_path / "one.npy", tmp_path / "many.npy",
                                 tmp_path / "channel.npy"])
    assert names[:2] == [str(tmp_path / "one.npy"), f"{tmp_path / 'many.npy'}[0]"]
    assert loaded.shape == (7, 28, 28)
    np.testing.assert_allclose(loaded[4:], images / 255.0, atol=1e-7)


@pytest.mark.parametrize("array, error, message", [
    (np.zeros((28, 27), np.uint8), UnsupportedInputError, r"shape \(28, 27\); expected"),
    (np.zeros((0, 28, 28), np.uint8), EmptyInputError, "holds no images"),
    (np.full((28, 28), 2.0), UnsupportedInputError, r"values outside \[0, 1\]"),
    (np.array([None] * 784).reshape(28, 28), UnsupportedInputError, "is not a NumPy .npy array"),
], ids=["shape", "empty", "range", "pickle"])
def test_bad_arrays_are_refused(tmp_path, array, error, message):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(error, match=message):
        read_array_file(path)


def test_missing_paths_and_empty_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="nope.png does not exist"):
        load_inputs([tmp_path / "nope.png"])
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="holds no image or .npy files"):
        load_inputs([tmp_path])


def test_models_that_are_missing_or_not_models_are_refused(tmp_path, monkeypatch):
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="fake.keras is not a Keras model"):
        load_model(tmp_path / "fake.keras")
    with pytest.raises(ModelError, match="absent.keras is missing"):
        load_model(tmp_path / "absent.keras")
    (tmp_path / "fake.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="fake.onnx is not an ONNX model"):
        load_predictor(tmp_path / "fake.onnx")
    monkeypatch.setattr("fashion.inference.model_files.default_model_path",
                        lambda: tmp_path / "d.keras")
    with pytest.raises(ModelError, match="the shipped model .*d.keras is missing"):
        load_model()


def test_cli_predict_json_and_errors(tmp_path, tiny_model_path, test_images, capsys):
    rng = np.random.default_rng(1)
    photo_like(test_images[0][1], rng).save(tmp_path / "shirt.jpg")
    assert main(["predict", "--model", str(tiny_model_path), "--json", "--top", "2",
                 str(tmp_path / "shirt.jpg")]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["file"] == str(tmp_path / "shirt.jpg") and len(result["top"]) == 2
    assert result["top"][0]["label"] in CLASS_NAMES
    (tmp_path / "bad.png").write_bytes(b"hello")
    assert main(["predict", "--model", str(tiny_model_path), str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("fashion: error: ")
    assert main(["predict", "--top", "11", str(tmp_path / "shirt.jpg")]) == 2


def test_single_image_skips_keras_predict_overhead(predictor, tiny_model_path, test_images):
    model = load_model(tiny_model_path)
    image = test_images[0][:1] / np.float32(255.0)

    def p50(call):
        call()  # warm up: trace once
        times = []
        for _ in range(10):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    direct = p50(lambda: predictor.probabilities(image))
    keras_predict = p50(lambda: model.predict(image[..., None], verbose=0))
    assert direct < keras_predict / 2, (direct, keras_predict)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_images_are_scaled_not_clipped(fmt):
    pixels = np.full((60, 60), 60000, np.uint16)  # light background...
    pixels[10:50, 20:40] = 1000  # ...and a dark garment, in 16 bits
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    image = to_fashion_mnist(open_image(buffer.getvalue(), "deep"))
    assert image[14, 14] == pytest.approx(1.0) and image[14, 1] == 0.0


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned 90 degrees
    buffer = io.BytesIO()
    Image.new("RGB", (60, 30), "white").save(buffer, "JPEG", exif=exif)
    assert open_image(buffer.getvalue(), "turned.jpg").size == (30, 60)


PHOTOS = Path(__file__).parent / "fixtures" / "photos"


def test_the_shipped_models_name_the_phone_photos_through_the_photo_model(tmp_path, capsys):
    assert main(["predict", str(PHOTOS), "--json", "--top", "2", "--show", str(tmp_path)]) == 0
    results = json.loads(capsys.readouterr().out)
    right = [r["top"][0]["class_id"] == int(Path(r["file"]).parent.name) for r in results]
    assert len(results) == 5 and all(right)
    for result in results:
        with Image.open(result["input"]) as seen:  # the photo model's input, not a 28x28
            assert seen.size == (64, 64) and Path(result["input"]).parent == tmp_path
        assert isinstance(result["not_sure"], bool)


def test_the_shipped_photo_model_is_recorded_and_calibrated_beside_the_default():
    from fashion.inference.model_files import default_model_path, photo_model_path

    record = json.loads(photo_model_path().with_suffix(".json").read_text())
    assert record["metrics"]["test"]["n_images"] > 0 and len(record["trained_by"]) == 4
    assert all("fashion adapt" in command for command in record["trained_by"])
    calibration = json.loads(photo_model_path().with_name("photo.calibration.json").read_text())
    assert calibration["images"] == record["metrics"]["test"]["n_images"]
    predictor = load_predictor()
    assert isinstance(predictor, RoutedPredictor)
    assert predictor.photos.calibration.temperature == pytest.approx(calibration["temperature"])
    assert predictor.dataset.model.count_params() == load_model(default_model_path()
                                                                ).count_params()


def test_threshold_out_of_range_and_show_into_a_file_are_refused(tmp_path, capsys):
    assert main(["predict", str(PHOTOS), "--threshold", "1.5"]) == 2
    assert "--threshold 1.5 is out of range" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["predict", str(PHOTOS), "--show", str(tmp_path / "file")]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err


def test_a_threshold_of_one_makes_every_answer_not_sure(capsys):
    assert main(["predict", str(PHOTOS / "1"), "--threshold", "1"]) == 0
    assert "(not sure)" in capsys.readouterr().out
