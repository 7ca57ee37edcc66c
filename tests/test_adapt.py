"""`fashion adapt`: a run from a tiny folder of labelled photos, its report, a kill and resume,
and its model in predict, serve and export. No dataset needed: `--fashion-mnist 0`."""

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURE_PHOTOS, labelled_photos, photo_like
from fastapi.testclient import TestClient
from PIL import Image
from test_pipeline import _kill_when

import fashion
from fashion.cli import main
from fashion.errors import ConfigError, PhotoFolderError
from fashion.inference.calibrate import Calibration
from fashion.inference.model_files import load_model
from fashion.inference.photos import photos_from_dataset, read_photo
from fashion.inference.predict import Predictor, RoutedPredictor, load_inputs, load_predictor
from fashion.runs import rundir
from fashion.storage import files
from fashion.storage.classes import CLASS_NAMES, PHOTO_SHAPE

# Three epochs, so a kill after the first leaves a training to continue; a batch each.
TINY = ["--epochs", "3", "--fashion-mnist", "0"]


def _adapt(*args):
    return subprocess.run([sys.executable, "-m", "fashion.cli", "adapt", *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    return labelled_photos(tmp_path_factory.mktemp("adapt") / "photos", per_class=5)


@pytest.fixture(scope="module")
def adapted(photo_dir, tmp_path_factory):
    """A finished `fashion adapt` run, trained once for every test that only reads it."""
    out = tmp_path_factory.mktemp("adapt") / "run"
    done = _adapt(str(photo_dir), "--out", str(out), *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"run directory: {out}" in done.stdout and "held-out photos split" in done.stdout
    return out


def test_a_tiny_folder_makes_a_run_directory_and_its_report(adapted, photo_dir):
    for name in rundir.ARTEFACTS:
        assert (adapted / name).is_file(), name
    config = json.loads((adapted / "config.json").read_text())["config"]
    assert config["space"] == "photo" and config["photo_dir"] == str(photo_dir)
    assert (config["photo_holdout"], config["fashion_mnist_images"], config["final_epochs"]) \
        == (0.2, 0, 3)
    metrics = json.loads((adapted / "metrics.json").read_text())
    assert metrics["sizes"] == {"train": 20, "val": 5, "test": 5, "fashion_mnist": 0}
    assert metrics["test"]["n_images"] == 5 and metrics["epochs_trained"] == 3
    report = (adapted / "report.md").read_text()
    assert "photos held out of" in report and "What tuning found" not in report
    assert (adapted / "figures" / "worst_misclassified.png").is_file()
    assert not (adapted / rundir.TRAINING_BACKUP).exists()
    # The report is rebuilt from the run's own folder, photos included.
    (adapted / "report.html").unlink()
    assert main(["report", str(adapted)]) == 0 and (adapted / "report.html").is_file()


def test_a_finished_run_is_refused_with_the_report_hint(adapted, photo_dir, capsys):
    assert main(["adapt", str(photo_dir), "--out", str(adapted), *TINY]) == 1
    err = capsys.readouterr().err
    assert "already holds a finished run" in err and f"fashion report {adapted}" in err


def test_a_run_killed_in_training_resumes_to_the_same_result(adapted, photo_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["adapt", str(photo_dir), "--out", str(out), *TINY]
    _kill_when(argv, tmp_path / "killed.log", r"^Epoch 2/")  # in epoch 2, epoch 1 backed up
    assert not rundir.RunDir(out).is_finished()
    done = _adapt(*argv[1:])
    assert done.returncode == 0, done.stderr[-2000:]
    assert files.read_history(out / "history.csv") == files.read_history(adapted / "history.csv")
    resumed, whole = (json.loads((run / "metrics.json").read_text())["test"]
                      for run in (out, adapted))
    for name in ("accuracy", "loss", "confusion_matrix"):
        assert resumed[name] == whole[name], name


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: ((root / "socks").mkdir(), root)[1], "socks is named by no class"),
    (lambda root: ((root / "bag").mkdir(), root)[1], "bag holds no photos"),
    (lambda root: ((root / "1" / "list.pdf").write_bytes(b"%PDF"), root)[1],
     "list.pdf is not an image file"),
])
def test_a_bad_folder_exits_in_one_line_and_writes_nothing(tmp_path, capsys, make, message):
    root = make(labelled_photos(tmp_path / "photos", per_class=2))
    out = tmp_path / "run"
    assert main(["adapt", str(root), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fashion: error: ") and message in err
    assert not out.exists()


def test_a_damaged_photo_is_named_before_anything_is_written(tmp_path, capsys):
    root = labelled_photos(tmp_path / "photos", per_class=2)
    (root / "3" / "photo0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "run"
    assert main(["adapt", str(root), "--out", str(out), *TINY]) == 1
    assert f"{root / '3' / 'photo0.jpg'} is " in capsys.readouterr().err
    assert not out.exists()


def test_options_are_checked_once_in_the_config(tmp_path):
    root = labelled_photos(tmp_path / "photos", per_class=2)
    with pytest.raises(ConfigError, match="--holdout must be a fraction between 0 and 1"):
        fashion.adapt(root, tmp_path / "run", holdout=1.5)
    with pytest.raises(ConfigError, match="--fashion-mnist must be an integer >= 0"):
        fashion.adapt(root, tmp_path / "run", fashion_mnist=-1)
    with pytest.raises(ConfigError, match="learns from photos; train it with `fashion adapt"):
        fashion.RunConfig(space="photo")
    with pytest.raises(PhotoFolderError, match="does not exist"):
        fashion.adapt(tmp_path / "none", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_adapted_model_predicts_photos_and_28x28_arrays(adapted, tmp_path, capsys):
    model = adapted / "model.keras"
    photo = next(FIXTURE_PHOTOS.glob("1/*.jpg"))
    np.save(tmp_path / "images.npy", np.zeros((2, 28, 28), np.uint8))
    assert main(["predict", "--model", str(model), "--json", "--show", str(tmp_path / "saw"),
                 str(photo), str(tmp_path / "images.npy")]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in results] == [str(photo), *(f"{tmp_path / 'images.npy'}[{i}]"
                                                          for i in range(2))]
    assert all(r["top"][0]["label"] in CLASS_NAMES for r in results)
    with Image.open(results[0]["input"]) as seen:
        assert seen.size == (64, 64) and seen.mode == "RGB"
    # The same answer as the model's own forward pass on the photo as read.
    expected = load_model(model)(read_photo(photo)[None], training=False)
    assert results[0]["top"][0]["class_id"] == int(np.argmax(expected))


def test_photos_are_read_whole_in_colour_and_dataset_images_made_photos():
    photo = read_photo(next(FIXTURE_PHOTOS.glob("0/*.jpg")))
    assert photo.shape == PHOTO_SHAPE and photo.dtype == np.float32
    assert 0.0 <= photo.min() and photo.max() <= 1.0
    assert np.abs(photo[..., 0] - photo[..., 2]).max() > 0.05  # colour kept
    image = np.zeros((28, 28), np.float32)
    image[10:18, 4:24] = 1.0
    made = photos_from_dataset(image[None, ..., None])
    assert made.shape == (1, *PHOTO_SHAPE)
    np.testing.assert_array_equal(made[..., 0], made[..., 2])  # grey, replicated
    assert made[0, 32, 32, 0] == 1.0 and made[0, 2, 32, 0] == 0.0


def test_the_service_answers_uploads_and_batches_through_the_photo_model(adapted):
    from fashion.service.serve import create_app

    photo = next(FIXTURE_PHOTOS.glob("4/*.jpg"))
    with TestClient(create_app(adapted / "model.keras")) as client:
        answer = client.post("/predict", files={"file": (photo.name, photo.read_bytes(),
                                                         "image/jpeg")})
        assert answer.status_code == 200, answer.text
        [result] = answer.json()
        seen = base64.b64decode(result["input"].split(",", 1)[1])
        assert Image.open(io.BytesIO(seen)).size == (64, 64)
        expected = Predictor(load_model(adapted / "model.keras")).probabilities(
            read_photo(photo)[None])[0]
        assert result["top"][0]["class_id"] == int(np.argmax(expected))
        batch = client.post("/predict", json={"images": [[[0.0] * 28] * 28] * 2})
        assert batch.status_code == 200 and len(batch.json()) == 2


def test_the_adapted_model_exports_to_onnx_with_its_own_outputs(adapted, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from fashion.inference.export import export_model

    photos = np.stack([read_photo(p) for p in sorted(FIXTURE_PHOTOS.glob("*/*.jpg"))])
    expected = Predictor(load_model(adapted / "model.keras")).probabilities(photos)
    out = export_model(adapted / "model.keras", "onnx", tmp_path / "photo.onnx")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    [outputs] = session.run(None, {session.get_inputs()[0].name: photos})
    np.testing.assert_allclose(outputs, expected, atol=1e-4, rtol=0)


def test_adapt_calibrates_on_its_held_out_photos_when_there_are_enough(adapted, tmp_path,
                                                                        monkeypatch, capsys):
    from fashion.workflow import adapt as adapt_module

    # Five held out: too few to choose a threshold on, so the tiny run was not calibrated...
    assert not (adapted / "model.calibration.json").exists()
    assert main(["calibrate", str(adapted / "model.keras")]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "held out 5 photos, fewer than the 50" in err
    # ...and with the bar lowered, `fashion calibrate` fits it on those five.
    monkeypatch.setattr(adapt_module, "MIN_CALIBRATION_PHOTOS", 5)
    try:
        assert main(["calibrate", str(adapted / "model.keras")]) == 0
        assert "the run's held-out photos (5)" in capsys.readouterr().out
        saved = json.loads((adapted / "model.calibration.json").read_text())
        assert saved["images"] == 5 and 0.0 <= saved["threshold"] <= 1.0
        assert load_predictor(adapted / "model.keras").calibration.temperature \
            == pytest.approx(saved["temperature"])
    finally:
        (adapted / "model.calibration.json").unlink(missing_ok=True)
    # Outside its run directory a photo model has no held-out photos to be fitted on.
    (tmp_path / "model.keras").write_bytes((adapted / "model.keras").read_bytes())
    assert main(["calibrate", str(tmp_path / "model.keras")]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not in a `fashion adapt` run directory" in err
    assert not (tmp_path / "model.calibration.json").exists()


def _routed(adapted, tiny_model_path, photo_threshold=0.0):
    return RoutedPredictor(Predictor(load_model(tiny_model_path)),
                           Predictor(load_model(adapted / "model.keras"),
                                     calibration=Calibration(threshold=photo_threshold)))


def test_a_routed_predictor_sends_phone_photos_to_the_photo_model_and_the_rest_to_the_other(
        adapted, tiny_model_path, tmp_path):
    phone = next(FIXTURE_PHOTOS.glob("1/*.jpg"))
    dataset = np.zeros((28, 28), np.uint8)
    dataset[6:22, 9:19] = 200  # a trouser-like block
    photo_like(dataset, np.random.default_rng(0)).save(tmp_path / "shot.jpg")
    Image.fromarray(dataset).save(tmp_path / "small.png")
    np.save(tmp_path / "images.npy", np.stack([dataset, dataset]))
    routed = _routed(adapted, tiny_model_path, photo_threshold=1.0)
    names, images = load_inputs([phone, tmp_path / "shot.jpg", tmp_path / "small.png",
                                 tmp_path / "images.npy"], predictor=routed)
    assert [np.shape(image) for image in images] == [PHOTO_SHAPE] + [(28, 28)] * 4
    probabilities, not_sure = routed.answers(images)
    # Each row is the answer of the model it was routed to, on the image as that model reads it.
    np.testing.assert_allclose(probabilities[0], routed.photos.probabilities(
        read_photo(phone)[None])[0], atol=1e-6)
    np.testing.assert_allclose(probabilities[1:], routed.dataset.probabilities(
        np.stack(images[1:])), atol=1e-6)
    # And is judged by that model's calibration: the photo model's threshold of 1 withholds it;
    # a threshold given overrides both models'.
    assert not_sure.tolist() == [True, False, False, False, False]
    assert routed.answers(images, threshold=0.0)[1].tolist() == [False] * 5
    assert routed.answers(images, threshold=1.0)[1].tolist() == [True] * 5


def test_one_service_pass_scores_photos_and_28x28_images_each_with_its_own_model(
        adapted, tiny_model_path):
    import asyncio

    from fashion.service.workload import Batcher

    routed = _routed(adapted, tiny_model_path)
    photo = read_photo(next(FIXTURE_PHOTOS.glob("0/*.jpg")))[None]
    batch = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)

    async def together():
        batcher = Batcher(routed)
        return await asyncio.gather(batcher.probabilities(photo), batcher.probabilities(batch))

    from_photo, from_batch = asyncio.run(together())
    np.testing.assert_allclose(from_photo, routed.photos.probabilities(photo), atol=1e-6)
    np.testing.assert_allclose(from_batch, routed.dataset.probabilities(batch), atol=1e-6)


def test_the_default_predictor_and_service_route_when_a_photo_model_is_shipped(
        adapted, monkeypatch):
    from fashion.inference import predict
    from fashion.service.serve import create_app

    monkeypatch.setattr(predict, "photo_model_path", lambda: adapted / "model.keras")
    assert isinstance(load_predictor(), RoutedPredictor)
    photo = next(FIXTURE_PHOTOS.glob("3/*.jpg"))
    with TestClient(create_app()) as client:
        answer = client.post("/predict", files={"file": (photo.name, photo.read_bytes(),
                                                         "image/jpeg")})
        assert answer.status_code == 200, answer.text
        seen = base64.b64decode(answer.json()[0]["input"].split(",", 1)[1])
        assert Image.open(io.BytesIO(seen)).size == (64, 64)  # the photo model's input
        batch = client.post("/predict", json={"images": [[[0.0] * 28] * 28] * 2})
        assert batch.status_code == 200 and [r["not_sure"] for r in batch.json()] == [True] * 2


def test_runs_of_other_seeds_hold_out_the_same_photos(photo_dir):
    from fashion.inference.photo_splits import load_photo_splits
    from fashion.training.config import adapt_config

    first, second = (load_photo_splits(adapt_config(photo_dir, seed=seed)) for seed in (1, 2))
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_train, second.y_train)
