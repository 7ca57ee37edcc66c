"""The image loader against damaged and hostile bytes: each known case, then a seeded fuzz."""

import io
import random
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from fashion.cli import main
from fashion.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from fashion.inference.images import (
    DECODED_SIDE,
    DRAFT_SIDE,
    IMAGE_FORMATS,
    decode_bytes,
    open_image,
    read_image_header,
    to_fashion_mnist,
)

# The only errors the loader may raise: what the CLI prints as one line and the service maps to
# 400, 413 and 415.
DOCUMENTED = (EmptyInputError, UnsupportedInputError, CorruptInputError, InputTooLargeError)
FUZZ_CASES = 1000  # per format


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(*chunks: bytes, ihdr: bytes = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)) -> bytes:
    """An 8x8 grayscale PNG with `chunks` between its header and its pixels."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(chunks)
            + _chunk(b"IDAT", zlib.compress(bytes(9 * 8))) + _chunk(b"IEND", b""))


def _inflating(keyword: bytes) -> bytes:
    """A chunk body: a keyword, then 2 KB of zlib that inflates to 2 MiB."""
    return keyword + b"\0\0" + zlib.compress(bytes(2 * 2**20), 9)


def _exif_jpeg(tag_type: bytes = b"\x01\x0f\x00\x02") -> bytes:
    """A 60x30 JPEG turned by EXIF; `tag_type` replaces the Make tag's number and type."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotated 90 degrees
    exif[0x010F] = "Camera"  # Make, ASCII
    data = _save(Image.new("RGB", (60, 30), "white"), "JPEG", exif=exif)
    return data.replace(b"\x01\x0f\x00\x02", tag_type, 1)


def _tiff(**tags: int) -> bytes:
    """A 16x16 grayscale TIFF with some of its LONG tags overwritten, by number."""
    data = bytearray(_save(Image.new("L", (16, 16)), "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag = struct.unpack("<H", data[entry:entry + 2])[0]
        if f"t{tag}" in tags:
            data[entry + 2:entry + 12] = struct.pack("<HII", 4, 1, tags[f"t{tag}"])
    return bytes(data)


# Each a case that once gave a 500 from the service and a traceback from `fashion predict`.
@pytest.mark.parametrize("make, error, message", [
    (lambda: _png(_chunk(b"zTXt", _inflating(b"Comment"))), CorruptInputError,
     "Decompressed data too large"),
    (lambda: _png(_chunk(b"iCCP", _inflating(b"icc"))), CorruptInputError,
     "Decompressed data too large"),
    (lambda: _png(*[_chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(600_000)))] * 2),
     CorruptInputError, "Too much memory used in text chunks"),  # 2 KB held 64 MiB in text
    (lambda: _png(ihdr=b"\0\0\0\x08\0\0"), CorruptInputError, "Truncated IHDR chunk"),
    (lambda: b"BM" + bytes(12) + struct.pack("<I", 99) + bytes(20), CorruptInputError,
     "damaged image"),
    (lambda: _save(Image.new("RGB", (64, 64)), "JPEG")[:30], CorruptInputError,
     "Truncated File Read"),
    (lambda: _save(Image.new("RGB", (64, 64)), "WEBP")[:40] + bytes(20), CorruptInputError,
     "damaged image"),
    (lambda: _tiff(t278=0), CorruptInputError, "damaged TIFF image"),  # 0 rows per strip
    (lambda: _tiff(t256=60000), CorruptInputError, "damaged TIFF image"),  # wider than its data
    (lambda: _exif_jpeg(b"\x01\x0a\x00\x02"), CorruptInputError,  # struct.error in EXIF
     "damaged JPEG image"),
], ids=["ztxt-bomb", "iccp-bomb", "text-memory", "short-ihdr", "bmp-header", "truncated-jpeg",
        "webp", "tiff-strips", "tiff-width", "exif"])
def test_malformed_images_get_one_documented_error(make, error, message):
    with pytest.raises(error, match=message) as caught:
        open_image(make(), "x")
    assert str(caught.value).startswith("x is ") and "\n" not in str(caught.value)


def test_cli_prints_one_line_for_each_malformed_image(tmp_path, capsys):
    cases = {"ztxt.png": _png(_chunk(b"zTXt", _inflating(b"Comment"))),
             "ihdr.png": _png(ihdr=b"\0\0\0\x08\0\0"),
             "truncated.jpg": _save(Image.new("RGB", (64, 64)), "JPEG")[:30],
             "exif.jpg": _exif_jpeg(b"\x01\x0a\x00\x02")}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["predict", str(tmp_path / name)]) == 1  # refused before any model loads
        err = capsys.readouterr().err
        assert err.startswith(f"fashion: error: {tmp_path / name} is ") and err.count("\n") == 1


def test_the_exif_case_is_valid_before_its_tag_is_damaged():
    assert open_image(_exif_jpeg(), "x").size == (30, 60)


@pytest.fixture(scope="module")
def big_photo() -> tuple[Image.Image, np.ndarray]:
    """A 2400x1800 photo of a dark garment a quarter of its width, and its full-size result."""
    photo = Image.new("L", (2400, 1800), 255)
    photo.paste(0, (600, 300, 1200, 1500))
    return photo, to_fashion_mnist(photo)


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "P"),
                                       ("PNG", "1"), ("TIFF", "I;16"), ("GIF", "P")])
def test_large_images_are_decoded_small_and_keep_their_content(big_photo, fmt, mode):
    photo, full_size = big_photo
    data = _save(photo.convert(mode), fmt)
    header = read_image_header(data, "big")
    image = open_image(data, "big")
    side = DRAFT_SIDE if fmt == "JPEG" else DECODED_SIDE
    assert side <= min(image.size) < 2 * side
    # JPEG decodes at 1/8 scale (draft): the estimate is of the small image, not the big one.
    assert decode_bytes(header) <= (300 * 225 * 4 if fmt == "JPEG" else 2400 * 1800 * 6)
    difference = np.abs(to_fashion_mnist(image) - full_size)
    assert difference.mean() < 0.02 and difference.max() < 0.25  # soft edges, nothing moved


def test_exif_orientation_survives_shrinking():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.new("RGB", (1200, 600), "white"), "PNG", exif=exif)
    assert open_image(data, "turned.png").size == (300, 600)


def _seeds() -> dict[str, bytes]:
    """One small valid image per format, with the metadata each format's parser reads."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 3
    info = {"PNG": {"exif": exif}, "JPEG": {"exif": exif, "quality": 80}, "TIFF": {"exif": exif},
            "WEBP": {"exif": exif}, "GIF": {"comment": b"fuzz"}, "BMP": {}}
    return {fmt: _save(photo.convert("P") if fmt == "GIF" else photo, fmt, **info[fmt])
            for fmt in IMAGE_FORMATS}


def _mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        at = rng.randrange(len(data))
        if kind == 0:  # flip a bit
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:  # an interesting byte: sizes and counts go to their extremes
            data[at] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF])
        elif kind == 2:  # truncate
            del data[max(at, 1):]
        elif kind == 3:  # a run of random bytes
            data[at:at + 4] = rng.randbytes(4)
        else:  # repeat a slice: duplicated chunks, markers and tags
            data[at:at] = data[at:at + rng.randint(1, 64)]
    return bytes(data)


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_fuzzed_images_give_an_image_or_a_documented_error(fmt):
    seed = _seeds()[fmt]
    rng = random.Random(f"fuzz-{fmt}")
    outcomes = {"read": 0, "refused": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on damaged metadata it can skip
        for case in range(FUZZ_CASES):
            data = _mutate(seed, rng)
            try:
                pixels = to_fashion_mnist(open_image(data, "fuzz"))
            except DOCUMENTED as e:
                assert "\n" not in str(e)
                outcomes["refused"] += 1
            except Exception as e:
                pytest.fail(f"case {case} of {fmt}: {type(e).__name__}: {e} from {data!r}")
            else:
                assert pixels.shape == (28, 28) and np.isfinite(pixels).all(), case
                outcomes["read"] += 1
    assert outcomes["refused"] > FUZZ_CASES // 10, outcomes  # the mutations do damage


def test_the_png_text_limit_is_lowered_only_while_fashion_decodes():
    from PIL import PngImagePlugin

    before = PngImagePlugin.MAX_TEXT_MEMORY
    open_image(_png(), "small.png")
    assert PngImagePlugin.MAX_TEXT_MEMORY == before  # a notebook's own PNGs keep Pillow's limit
