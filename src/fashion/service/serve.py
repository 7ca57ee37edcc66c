"""The HTTP service: a FastAPI app that loads the model once and classifies uploads or batches."""

from __future__ import annotations

import contextlib
import os
import re
from base64 import b64encode
from importlib import resources
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from fashion import __version__
from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from fashion.inference.answers import input_png, predictions
from fashion.inference.images import MAX_BYTES, decode_bytes, decode_image, read_image_header
from fashion.inference.predict import RoutedPredictor, load_predictor
from fashion.service.workload import PASS_SIZE, Batcher, WorkGate
from fashion.storage.classes import CLASS_NAMES

MAX_BATCH = 1000  # images in one JSON request; their JSON also has to fit in MAX_BYTES
MULTIPART_FRAMING = 2**16  # room for the multipart boundaries and headers around a file
STATUS = {EmptyInputError: 400, CorruptInputError: 400, UnsupportedInputError: 415,
          InputTooLargeError: 413}

Pixel = Annotated[float, Field(ge=0.0, le=1.0)]
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]
Image28 = Annotated[list[Row], Field(min_length=28, max_length=28)]


class Batch(BaseModel):
    """Fashion-MNIST-style images as they are: a light garment on black, pixels in [0, 1]."""

    # Numbers only: no "0.5" strings or true/false taken as pixels, no fields ignored.
    model_config = ConfigDict(strict=True, extra="forbid")
    images: list[Image28] = Field(min_length=1, max_length=MAX_BATCH)


class ClassInfo(BaseModel):
    class_id: int
    label: str


class TopClass(ClassInfo):
    probability: float


class Prediction(BaseModel):
    file: str | None = Field(description="the uploaded file's name; null for a JSON batch")
    top: list[TopClass] = Field(description="the most probable classes, best first")
    not_sure: bool = Field(description="the best class is below the calibrated threshold, or no "
                           "garment was found: do not trust the answer")
    input: str | None = Field(None, description="for an upload, the image the model saw (28x28, "
                              "or a photo model's 64x64 colour photo), as a PNG data URL")


# One route takes two bodies, which FastAPI cannot declare from parameters: describe both here.
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "PNG, JPEG, BMP, GIF, WebP or TIFF"}}}},
    "application/json": {"schema": Batch.model_json_schema()},
}}}
ERRORS = {400: {"description": "empty, truncated or damaged image"},
          413: {"description": "over the byte, pixel or image-count limit"},
          415: {"description": "not an image, an unsupported format or content type"},
          422: {"description": "malformed JSON batch or missing field `file`"},
          503: {"description": "busy: retry after the seconds in `Retry-After`"}}
IMAGE_ADAPTER = TypeAdapter(Image28, config=ConfigDict(strict=True))
# The skeleton of a JSON batch, walked image by image so that the image count is known before
# any image is parsed and the GIL is let go between images: `{"images": [` image, ... `]}`.
BATCH_START = re.compile(rb'\s*\{\s*"images"\s*:\s*\[\s*')
BATCH_IMAGE = re.compile(rb"\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]")  # an array of flat arrays
BATCH_COMMA = re.compile(rb"\s*,\s*")
BATCH_END = re.compile(rb"\s*\]\s*\}\s*\Z")
MAX_IMAGE_JSON = 2**16  # 784 numbers of up to 80 characters: longer is not one image
SMALL_BODY = 2**16  # a body this small that is not the skeleton gets pydantic's own errors

router = APIRouter()


def create_app(model_path: str | os.PathLike | None = None) -> FastAPI:
    """Load the model (default: the shipped one) and return the app; bad models fail here."""
    app = FastAPI(title="fashion", version=__version__,
                  description="Classify clothing images into the 10 Fashion-MNIST classes.")
    app.state.predictor = load_predictor(model_path, batch_size=PASS_SIZE)
    app.state.model_name = (os.path.basename(str(model_path)) if model_path else
                            " + ".join(_shipped_names(app.state.predictor)))
    page = resources.files("fashion.service") / "static" / "index.html"
    app.state.page = page.read_text("utf-8")
    app.state.gate = WorkGate()
    app.state.batcher = Batcher(app.state.predictor)
    app.include_router(router)
    app.add_exception_handler(InputError, _input_error)
    return app


def _shipped_names(predictor) -> list[str]:
    routed = isinstance(predictor, RoutedPredictor)
    return ["default.keras", "photo.keras"] if routed else ["default.keras"]


async def _input_error(request: Request, error: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=STATUS.get(type(error), 400))


# The cheap routes are coroutines: they answer from the event loop, never queued for a thread.
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> str:
    return request.app.state.page


@router.get("/health")
async def health(request: Request) -> dict:
    """Liveness: the model is loaded and the service answers."""
    return {"status": "ok", "model": request.app.state.model_name, "version": __version__}


@router.get("/classes", response_model=list[ClassInfo])
async def classes() -> list[dict]:
    """The 10 classes in the order of the model's outputs."""
    return [{"class_id": i, "label": name} for i, name in enumerate(CLASS_NAMES)]


@router.post("/predict", response_model=list[Prediction], openapi_extra=PREDICT_BODY,
             responses=ERRORS)
async def predict(request: Request,
                  top: Annotated[int, Query(ge=1, le=10, description="classes per image")] = 3,
                  invert: Literal["auto", "always", "never"] = "auto",  # as INVERT_CHOICES
                  threshold: Annotated[float | None, Query(
                      ge=0.0, le=1.0, description="\"not sure\" below this calibrated "
                      "probability (default: the model's)")] = None,
                  ) -> JSONResponse:
    """Classify one uploaded image (multipart field `file`) or a JSON batch of 28x28 arrays."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    gate, batcher = request.app.state.gate, request.app.state.batcher
    if kind == "multipart/form-data":
        _check_length(request, MAX_BYTES + MULTIPART_FRAMING)
        name, data = await _read_upload(request)
        # Only the header is read before the claim: the decoding's memory is known first.
        header = await run_in_threadpool(read_image_header, data, name)
        async with gate.claim(decode_bytes(header)):
            image = await run_in_threadpool(_preprocess, request.app.state.predictor, header,
                                            name, invert)
            images = image[None]
            probabilities = await batcher.probabilities(images)
        names = [name]
    elif kind == "application/json":
        _check_length(request, MAX_BYTES)
        body = await _read_body(request, MAX_BYTES)
        starts, ends = await run_in_threadpool(_find_batch_images, body)
        async with gate.claim(len(body)):  # parsed an image at a time: the body dominates
            images = await run_in_threadpool(_parse_batch, body, starts, ends)
            probabilities = await batcher.probabilities(images)
        names = [None] * len(images)
    else:
        raise HTTPException(415, f"content type {kind or 'none'} is not accepted; send "
                                 "multipart/form-data with a field `file`, or application/json")
    probabilities, not_sure = request.app.state.predictor.calibrate(probabilities, images,
                                                                    threshold)
    shown = images[0] if kind == "multipart/form-data" else None  # what the model saw
    if len(names) > 1:  # a batch's 1,000 answers take 0.1 s to build and encode: not here
        return await run_in_threadpool(_respond, names, probabilities, top, not_sure, shown)
    return _respond(names, probabilities, top, not_sure, shown)


def _respond(names: list, probabilities: np.ndarray, top: int, not_sure: np.ndarray,
             shown: np.ndarray | None = None) -> JSONResponse:
    """The answers as JSON; with `shown`, one upload's answer carries the image the model saw
    as a PNG data URL, for the page to show beside the photo."""
    results = predictions(names, probabilities, top, not_sure)
    if shown is not None:
        results[0]["input"] = "data:image/png;base64," + b64encode(input_png(shown)).decode()
    return JSONResponse(results)


def _too_large(what: str) -> HTTPException:
    return HTTPException(413, f"{what} over the limit of {MAX_BYTES:,} bytes; scale the image "
                              "down or send fewer images")


def _check_length(request: Request, limit: int) -> None:
    """Refuse a declared oversize body before reading any of it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(f"the request has {int(length):,} bytes,")


async def _limited_stream(request: Request, limit: int):
    """The body's chunks, cut off with a 413 as soon as they outgrow `limit` (a chunked body
    comes without a length)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large("the request is")
        yield chunk


async def _read_body(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _limited_stream(request, limit)])


async def _read_upload(request: Request) -> tuple[str, bytes]:
    stream = _limited_stream(request, MAX_BYTES + MULTIPART_FRAMING)
    try:
        async with contextlib.aclosing(stream):
            form = await MultiPartParser(request.headers, stream, max_files=1,
                                         max_fields=4).parse()
    except MultiPartException as e:
        raise HTTPException(400, e.message) from e
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError([{"type": "missing", "loc": ("body", "file"),
                                           "msg": "send the image in the multipart field `file`",
                                           "input": None}])
        name = upload.filename or "upload"
        if upload.size is not None and upload.size > MAX_BYTES:
            raise InputTooLargeError(f"{name} has {upload.size:,} bytes, over the "
                                     f"limit of {MAX_BYTES:,}; scale the image down")
        return name, await upload.read()
    finally:
        await form.close()


def _preprocess(predictor, header, name: str, invert: str) -> np.ndarray:
    """The image decoded and made what the model it goes to takes (`Predictor.prepare`): a
    28x28 image prepared as the dataset's, or a photo model's whole frame."""
    return predictor.prepare(decode_image(header, name), invert)


def _find_batch_images(body: bytes) -> tuple[list[int], list[int]]:
    """Find where each image of a JSON batch starts and ends, refusing more than MAX_BATCH
    before parsing any; a body of another shape gets pydantic's errors (422)."""
    start = BATCH_START.match(body)
    starts, ends = [], []
    at = start.end() if start else 0
    while start and (image := BATCH_IMAGE.match(body, at)):
        if len(starts) == MAX_BATCH:
            raise HTTPException(413, f"the batch holds more than {MAX_BATCH:,} images; send "
                                     f"at most {MAX_BATCH:,} per request")
        if image.end() - image.start() > MAX_IMAGE_JSON:
            raise RequestValidationError([{
                "type": "too_long", "loc": ("body", "images", len(starts)), "input": None,
                "msg": f"over {MAX_IMAGE_JSON:,} bytes of JSON: not a 28x28 array of numbers"}])
        starts.append(image.start())
        ends.append(image.end())
        comma = BATCH_COMMA.match(body, image.end())
        at = comma.end() if comma else image.end()
        if not comma:
            break
    if not (start and starts and BATCH_END.match(body, at)):
        _refuse_batch(body)
    return starts, ends


def _refuse_batch(body: bytes) -> None:
    """Raise pydantic's own errors for a body that is not a batch of arrays of arrays."""
    if len(body) > SMALL_BODY:  # pydantic would parse all of it holding the GIL: say less
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body",), "input": None,
            "msg": 'expected {"images": [...]} holding 28x28 arrays of numbers in [0, 1]'}])
    try:
        Batch.model_validate_json(body)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_input=False)) from e
    raise RequestValidationError([{  # valid, yet not in the plain layout the walk expects
        "type": "json_invalid", "loc": ("body",), "input": None,
        "msg": 'write the batch as {"images": [...]}, with no escapes in the key'}])


def _parse_batch(body: bytes, starts: list[int], ends: list[int]) -> np.ndarray:
    """Validate each image found by `_find_batch_images`: numbers in [0, 1], 28x28."""
    images = np.empty((len(starts), 28, 28), np.float32)
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        try:
            images[i] = IMAGE_ADAPTER.validate_json(body[start:end])
        except ValidationError as e:
            raise RequestValidationError([
                {**error, "loc": ("body", "images", i, *error["loc"])}
                for error in e.errors(include_url=False, include_input=False)]) from e
    return images
