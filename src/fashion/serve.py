"""The HTTP service: a FastAPI app that loads the model once and classifies uploads or batches."""

from __future__ import annotations

import os
from base64 import b64encode
from importlib import resources
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fashion import CLASS_NAMES, __version__
from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from fashion.images import MAX_BYTES, open_image, to_fashion_mnist
from fashion.predict import input_png, load_predictor, predictions

MAX_BATCH = 1000  # images in one JSON request; their JSON also has to fit in MAX_BYTES
STATUS = {EmptyInputError: 400, CorruptInputError: 400, UnsupportedInputError: 415,
          InputTooLargeError: 413}

Pixel = Annotated[float, Field(ge=0.0, le=1.0)]
Row = Annotated[list[Pixel], Field(min_length=28, max_length=28)]
Image28 = Annotated[list[Row], Field(min_length=28, max_length=28)]


class Batch(BaseModel):
    """Fashion-MNIST-style images as they are: a light garment on black, pixels in [0, 1]."""

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
    input: str | None = Field(None, description="for an upload, the 28x28 image the model saw, "
                              "as a PNG data URL")


# One route takes two bodies, which FastAPI cannot declare from parameters: describe both here.
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "PNG, JPEG, BMP, GIF, WebP or TIFF"}}}},
    "application/json": {"schema": Batch.model_json_schema()},
}}}
ERRORS = {400: {"description": "empty, truncated or damaged image"},
          413: {"description": "over the byte or pixel limit"},
          415: {"description": "not an image, an unsupported format or content type"},
          422: {"description": "malformed JSON batch or missing field `file`"}}

router = APIRouter()


def create_app(model_path: str | os.PathLike | None = None) -> FastAPI:
    """Load the model (default: the shipped one) and return the app; bad models fail here."""
    app = FastAPI(title="fashion", version=__version__,
                  description="Classify clothing images into the 10 Fashion-MNIST classes.")
    app.state.predictor = load_predictor(model_path)
    app.state.model_name = os.path.basename(str(model_path or "default.keras"))
    app.state.page = (resources.files("fashion") / "static" / "index.html").read_text("utf-8")
    app.include_router(router)
    app.add_exception_handler(InputError, _input_error)
    return app


async def _input_error(request: Request, error: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=STATUS.get(type(error), 400))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> str:
    return request.app.state.page


@router.get("/health")
def health(request: Request) -> dict:
    """Liveness: the model is loaded and the service answers."""
    return {"status": "ok", "model": request.app.state.model_name, "version": __version__}


@router.get("/classes", response_model=list[ClassInfo])
def classes() -> list[dict]:
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
                  ) -> list[dict]:
    """Classify one uploaded image (multipart field `file`) or a JSON batch of 28x28 arrays."""
    _check_length(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        name, images = await _read_upload(request, invert)
        names = [name]
    elif kind == "application/json":
        images = _read_batch(await _read_body(request))
        names = [None] * len(images)
    else:
        raise HTTPException(415, f"content type {kind or 'none'} is not accepted; send "
                                 "multipart/form-data with a field `file`, or application/json")
    probabilities, not_sure = await run_in_threadpool(request.app.state.predictor.answers,
                                                      images, threshold)
    results = predictions(names, probabilities, top, not_sure)
    if kind == "multipart/form-data":  # show what the model made of the photo
        results[0]["input"] = "data:image/png;base64," + b64encode(input_png(images[0])).decode()
    return results


def _check_length(request: Request) -> None:
    """Refuse a declared oversize body before reading any of it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES + 2**16:  # room for multipart framing
        raise HTTPException(413, f"the request has {int(length):,} bytes, over the limit of "
                                 f"{MAX_BYTES:,}; scale the image down or send fewer images")


async def _read_upload(request: Request, invert: str):
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError([{"type": "missing", "loc": ("body", "file"),
                                           "msg": "send the image in the multipart field `file`",
                                           "input": None}])
        if upload.size is not None and upload.size > MAX_BYTES:  # a body sent without a length
            raise InputTooLargeError(f"{upload.filename} has {upload.size:,} bytes, over the "
                                     f"limit of {MAX_BYTES:,}; scale the image down")
        data = await upload.read()
        name = upload.filename or "upload"
    # Decoding and resizing are CPU work: keep them off the event loop.
    image = await run_in_threadpool(_preprocess, data, name, invert)
    return name, image[None]


def _preprocess(data: bytes, name: str, invert: str):
    return to_fashion_mnist(open_image(data, name), invert)


async def _read_body(request: Request) -> bytes:
    """The body, refused as soon as it outgrows the limit (it may come without a length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise HTTPException(413, f"the request is over the limit of {MAX_BYTES:,} bytes; "
                                     "send fewer images per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_batch(body: bytes) -> np.ndarray:
    try:
        batch = Batch.model_validate_json(body)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_input=False)) from e
    return np.asarray(batch.images, dtype=np.float32)
