"""`fashion serve`: the API, refused inputs, a load test and the page in a real browser."""

import asyncio
import base64
import io
import json
import shutil
import socket
import struct
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import REPO, Watched, photo_like
from fastapi.testclient import TestClient
from PIL import Image
from test_images import _chunk, _exif_jpeg, _inflating
from test_images import _png as _png_chunks

from fashion.inference.model_files import load_model
from fashion.inference.predict import Predictor
from fashion.service.serve import create_app
from fashion.service.workload import WorkGate
from fashion.storage.classes import CLASS_NAMES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def client(tiny_model_path):
    with TestClient(create_app(tiny_model_path)) as client:
        yield client


@pytest.fixture(scope="module")
def shirt_jpeg(test_images) -> bytes:
    """A photo-like JPEG of a real test image (index 1: a pullover)."""
    buffer = io.BytesIO()
    photo_like(test_images[0][1], np.random.default_rng(2)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_health_classes_docs_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/classes").json() == [{"class_id": i, "label": name}
                                             for i, name in enumerate(CLASS_NAMES)]
    body = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
    assert set(body["content"]) == {"multipart/form-data", "application/json"}
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html") and 'id="file"' in page.text
    assert "://" not in page.text  # no CDN or other external resource: works offline


def test_upload_gets_the_same_answer_as_the_library(client, shirt_jpeg, tiny_model_path):
    response = client.post("/predict?top=3", files={"file": ("shirt.jpg", shirt_jpeg,
                                                             "image/jpeg")})
    assert response.status_code == 200
    [result] = response.json()
    assert result["file"] == "shirt.jpg" and len(result["top"]) == 3
    from fashion.inference.images import open_image, to_fashion_mnist

    expected = Predictor(load_model(tiny_model_path)).probabilities(
        to_fashion_mnist(open_image(shirt_jpeg, "shirt.jpg")))[0]
    assert result["top"][0]["class_id"] == int(expected.argmax())
    assert result["top"][0]["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert result["not_sure"] is False  # a model without calibration is always sure
    assert result["input"].startswith("data:image/png;base64,")
    seen = Image.open(io.BytesIO(base64.b64decode(result["input"].split(",", 1)[1])))
    assert seen.size == (28, 28)
    everything_unsure = client.post("/predict?threshold=1", files={"file": ("shirt.jpg",
                                                                            shirt_jpeg)})
    assert everything_unsure.json()[0]["not_sure"] is True


def test_json_batch(client, test_images, tiny_model_path):
    images = test_images[0][:5] / 255.0
    response = client.post("/predict?top=1", json={"images": images.tolist()})
    assert response.status_code == 200
    expected = Predictor(load_model(tiny_model_path)).probabilities(images).argmax(axis=1)
    assert [r["top"][0]["class_id"] for r in response.json()] == expected.tolist()
    assert all(r["file"] is None for r in response.json())


def _jpeg_half() -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    return buffer.getvalue()[:buffer.tell() // 2]


@pytest.mark.parametrize("make, status, message", [
    (lambda: b"", 400, "is empty"),
    (lambda: _jpeg_half(), 400, "truncated or damaged JPEG"),
    (lambda: _png(Image.new("RGB", (99, 99)))[:-30], 400, "truncated or damaged PNG"),
    (lambda: b"just some text", 415, "is not an image"),
    (lambda: b"P5 2 2 255 " + bytes(4), 415, "is a PPM image"),
    (lambda: _png(Image.new("1", (8000, 7000))), 413, "8000x7000 pixels, over the limit"),
], ids=["empty", "truncated-jpeg", "truncated-png", "not-image", "unsupported", "bomb"])
def test_bad_uploads_get_their_status_and_the_service_lives_on(client, make, status, message):
    response = client.post("/predict", files={"file": ("upload.png", make(), "image/png")})
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert client.get("/health").status_code == 200


def test_oversize_request_is_refused_before_reading(client, monkeypatch):
    monkeypatch.setattr("fashion.service.serve.MAX_BYTES", 1000)
    response = client.post("/predict", files={"file": ("big.png", bytes(200_000), "image/png")})
    assert response.status_code == 413
    assert "over the limit of 1,000" in response.json()["detail"]


@pytest.mark.parametrize("body, kind, status, where", [
    (b"{not json", "application/json", 422, "json_invalid"),
    (b'{"images": [[[0.5]]]}', "application/json", 422, "too_short"),
    (b'{"images": []}', "application/json", 422, "too_short"),
    (b'{"pictures": 1}', "application/json", 422, "missing"),
    (b"x", "text/plain", 415, "content type text/plain is not accepted"),
], ids=["syntax", "shape", "empty", "field", "content-type"])
def test_malformed_requests(client, body, kind, status, where):
    response = client.post("/predict", content=body, headers={"content-type": kind})
    assert response.status_code == status
    assert where in str(response.json()["detail"])


def test_out_of_range_pixels_and_missing_field(client):
    image = np.full((28, 28), 255.0).tolist()  # 0..255 instead of [0, 1]
    response = client.post("/predict", json={"images": [image]})
    assert response.status_code == 422 and "less_than_equal" in response.text
    response = client.post("/predict", files={"picture": ("a.png", b"x", "image/png")})
    assert response.status_code == 422 and "multipart field `file`" in response.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_path, tmp_path_factory):
    """`fashion serve` in its own process on a free loopback port; yields its URL."""
    port = _free_port()
    serving = Watched(["serve", "--model", str(tiny_model_path), "--port", str(port)],
                      tmp_path_factory.mktemp("serve") / "serve.log",
                      env={"PYTHONPATH": str(REPO / "src")})
    url = f"http://127.0.0.1:{port}"
    try:
        serving.wait_for(r"Uvicorn running on", timeout=120)  # after the app's startup
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        yield url
    finally:
        serving.terminate()


def _load(url: str, payload: bytes, clients: int, seconds: float) -> tuple[list, list]:
    latencies, errors = [], []
    stop = time.monotonic() + seconds

    def client():
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    response = http.post("/predict", files={"file": ("s.jpg", payload)})
                    if response.status_code != 200:
                        errors.append(response.status_code)
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


@pytest.mark.integration
@pytest.mark.parametrize("seconds", [
    5, pytest.param(30, marks=pytest.mark.slow)], ids=["8x5s", "8x30s"])
def test_concurrent_clients_get_answers_without_errors(server, shirt_jpeg, seconds, capsys):
    latencies, errors = _load(server, shirt_jpeg, clients=8, seconds=seconds)
    assert not errors, errors[:5]
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    with capsys.disabled():
        print(f"\nload test, 8 clients x {seconds} s: {len(latencies)} requests, "
              f"{len(latencies) / seconds:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    assert httpx.get(f"{server}/health").status_code == 200


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is not installed; "
                    "install it with: apt-get update && apt-get install -y chromium")
def test_page_in_a_real_browser(server, shirt_jpeg, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    (tmp_path / "shirt.jpg").write_bytes(shirt_jpeg)
    [expected] = httpx.post(f"{server}/predict", files={"file": ("s.jpg", shirt_jpeg)}).json()
    with sync_api.sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page()
            page.goto(server)
            page.set_input_files("#file", str(tmp_path / "shirt.jpg"))
            page.wait_for_selector("#result.shown", timeout=30_000)
            assert page.text_content("#label") == expected["top"][0]["label"]
            assert page.locator("#bars .bar").count() == 3
            assert page.evaluate("document.getElementById('preview').naturalWidth") == 200
            assert page.evaluate("document.getElementById('seen').naturalWidth") == 28
            (tmp_path / "bad.png").write_bytes(b"not an image")
            page.set_input_files("#file", str(tmp_path / "bad.png"))
            page.wait_for_selector("#error", state="visible", timeout=30_000)
            assert "is not an image" in page.text_content("#error")
        finally:
            browser.close()


def test_serve_refuses_a_missing_model_before_listening(tmp_path, monkeypatch, capsys):
    from fashion.cli import main

    monkeypatch.setattr("fashion.inference.model_files.default_model_path",
                        lambda: tmp_path / "d.keras")
    assert main(["serve", "--port", str(_free_port())]) == 1
    assert "the shipped model" in capsys.readouterr().err


def test_oversize_upload_without_a_declared_length_is_refused(client, monkeypatch):
    monkeypatch.setattr("fashion.service.serve.MAX_BYTES", 1000)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\""
            f"\r\nContent-Type: image/png\r\n\r\n").encode() + bytes(5000) + \
        f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/predict", content=iter([body]),  # an iterator: sent chunked
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    assert "big.png has 5,000 bytes, over the limit of 1,000" in response.json()["detail"]


def test_oversize_json_sent_without_a_length_is_refused(client, monkeypatch):
    monkeypatch.setattr("fashion.service.serve.MAX_BYTES", 1000)
    body = b'{"images": [' + b"0," * 5000 + b"0]}"
    response = client.post("/predict", content=iter([body[:600], body[600:]]),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit of 1,000" in response.text


# --- what the service refuses, and how it bounds its work ---

@pytest.mark.parametrize("make", [
    lambda: _png_chunks(_chunk(b"zTXt", _inflating(b"Comment"))),
    lambda: _png_chunks(ihdr=b"\0\0\0\x08\0\0"),
    lambda: b"BM" + bytes(12) + struct.pack("<I", 99) + bytes(20),
    lambda: _exif_jpeg(b"\x01\x0a\x00\x02"),
], ids=["ztxt-bomb", "short-ihdr", "bmp-header", "exif"])
def test_malformed_images_get_400_with_a_message(client, make):
    response = client.post("/predict", files={"file": ("bad.img", make(), "image/png")})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("bad.img is ")


def test_chunked_upload_is_cut_off_while_it_streams(client, monkeypatch):
    monkeypatch.setattr("fashion.service.serve.MAX_BYTES", 1000)
    sent = []

    async def body():  # 1,000 chunks of 64 KiB would be 64 MiB
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
               b"Content-Type: image/png\r\n\r\n")
        for _ in range(1000):
            sent.append(1)
            yield bytes(2**16)

    async def post():  # httpx's ASGI transport hands the app each chunk as it asks
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/predict", content=body(),
                                   headers={"content-type": "multipart/form-data; boundary=b"})

    response = asyncio.run(post())
    assert response.status_code == 413 and "over the limit of 1,000 bytes" in response.text
    assert len(sent) < 5  # refused after the first chunks, not after all of them


def test_batch_over_the_cap_is_refused_before_any_image_is_parsed(client, monkeypatch):
    monkeypatch.setattr("fashion.service.serve.MAX_BATCH", 3)
    bad_image = "[[" + ",".join(["2"] * 28) + "]]"  # out of range: parsing it would give 422
    body = '{"images": [' + ",".join([bad_image] * 4) + "]}"
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "more than 3 images" in response.text


@pytest.mark.parametrize("pixel, where", [('"0.5"', "float_type"), ("true", "float_type"),
                                           ("null", "float_type")], ids=["string", "bool", "null"])
def test_batch_pixels_must_be_json_numbers(client, pixel, where):
    rows = ",".join(["[" + ",".join([pixel] + ["0"] * 27) + "]"] + ["[" + ",".join(["1"] * 28)
                                                                      + "]"] * 27)
    response = client.post("/predict", content='{"images": [[' + rows + "]]}",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and where in response.text
    assert response.json()["detail"][0]["loc"][:3] == ["body", "images", 0]


def test_batch_with_an_unknown_field_is_refused(client):
    image = np.zeros((28, 28)).tolist()
    response = client.post("/predict", json={"images": [image], "top": 5})
    assert response.status_code == 422 and "extra_forbidden" in response.text


def test_batch_in_unusual_but_valid_json_is_read(client, test_images):
    images = (test_images[0][:2] / 255.0).tolist()
    body = json.dumps({"images": images}, indent=3).encode()  # newlines, indents
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200 and len(response.json()) == 2


def test_full_gate_answers_503_with_retry_after(client):
    gate = client.app.state.gate
    client.app.state.gate = WorkGate(budget=100, slots=1, max_waiting=0)

    async def hold():  # the budget is taken for as long as the request below runs
        async with client.app.state.gate.claim(100):
            return await asyncio.to_thread(
                client.post, "/predict", json={"images": [np.zeros((28, 28)).tolist()]})

    try:
        response = asyncio.run(hold())
    finally:
        client.app.state.gate = gate
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "busy" in response.json()["detail"]


def test_an_upload_claims_the_memory_its_decoding_needs(client, monkeypatch):
    claims = []
    gate = client.app.state.gate
    original = type(gate).claim

    def recording(self, nbytes):
        claims.append(nbytes)
        return original(self, nbytes)

    monkeypatch.setattr(type(gate), "claim", recording)
    big = _png(Image.new("RGB", (3000, 2000), "white"))  # 24 MB decoded, 30 KB sent
    assert client.post("/predict", files={"file": ("big.png", big)}).status_code == 200
    assert claims == [3000 * 2000 * 4] and gate.in_use == 0
