"""Request bodies, kept in memory only: size-limited reading, multipart parsing, image checks by content.

Starlette's own form parser spools files over 1 MiB to a temporary file on disk; uploads must never touch
the disk, so the body is read here (bounded) and parsed in memory with python-multipart's low-level parser.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from fastapi import Request
from PIL import Image, UnidentifiedImageError

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # python-multipart < 0.0.13
    from multipart.multipart import MultipartParser, parse_options_header  # type: ignore[no-redef]

from ..errors import ImageLoadError
from ..io import load_image_reduced
from .errors import ApiError

#: (leading bytes, format): what we accept, judged by content, never by name or declared type
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
ACCEPTED = "JPEG, PNG, GIF, WebP, BMP, TIFF, PNM"
MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries allowed on top of the files themselves
#: JPEGs with a longer side of at least twice this are decoded reduced, to a longer side of at least this
DECODE_SIDE = 2048


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its form field, the name the client gave it (may be empty) and its bytes."""

    field: str
    filename: str
    data: bytes
    too_large: bool = False  # more bytes than allowed: ``data`` holds only the start


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) more than ``limit`` bytes before or while reading it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {int(declared)} bytes exceeds the limit of {_mib(limit)}")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, f"request body exceeds the limit of {_mib(limit)}")
    return bytes(buf)


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB ({n} bytes)"


def is_multipart(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


def parse_multipart(body: bytes, content_type: str, max_part: int) -> list[Upload]:
    """Every part of a multipart/form-data body, in order. Parts over ``max_part`` bytes are flagged."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data without a boundary")
    parts: list[Upload] = []
    headers: dict[str, str] = {}
    field_name, field_value = bytearray(), bytearray()
    data = bytearray()
    over = False

    def on_part_begin() -> None:
        nonlocal over
        headers.clear()
        data.clear()
        over = False

    def on_header_field(b: bytes, start: int, end: int) -> None:
        field_name.extend(b[start:end])

    def on_header_value(b: bytes, start: int, end: int) -> None:
        field_value.extend(b[start:end])

    def on_header_end() -> None:
        headers[field_name.decode("latin-1").lower()] = field_value.decode("utf-8", "replace")
        field_name.clear()
        field_value.clear()

    def on_part_data(b: bytes, start: int, end: int) -> None:
        nonlocal over
        if over:
            return
        data.extend(b[start:end])
        if len(data) > max_part:
            over = True
            del data[64:]  # keep only what content sniffing needs

    def on_part_end() -> None:
        _, disp = parse_options_header(headers.get("content-disposition", ""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename", b"").decode("utf-8", "replace")
        parts.append(Upload(field=name, filename=filename, data=bytes(data), too_large=over))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types
        raise ApiError(400, f"malformed multipart body ({type(exc).__name__})") from None
    return parts


def file_parts(parts: list[Upload]) -> list[Upload]:
    """The parts that are files (a filename, or a field named file/files), in order."""
    return [p for p in parts if p.filename or p.field in ("file", "files")]


def sniff(data: bytes) -> str | None:
    """The image format named by the first bytes, or None: the content decides, not the name."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3] in b" \t\r\n#":
        return "PNM"
    return None


def check_image(upload: Upload, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """Raise 413 (size or pixels), 415 (not an image) or 422 (unreadable header); else (width, height).

    Only the header is read: cheap enough to do before any decoding.
    """
    if upload.too_large or len(upload.data) > max_bytes:
        raise ApiError(413, f"file exceeds the upload limit of {_mib(max_bytes)}")
    if not upload.data:
        raise ApiError(422, "empty file")
    fmt = sniff(upload.data)
    if fmt is None:
        raise ApiError(415, f"not an image: the content is none of {ACCEPTED}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data)) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise ApiError(413, f"image exceeds the limit of {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise ApiError(422, f"corrupt {fmt} image: its header cannot be read") from None
    if w * h > max_pixels:
        raise ApiError(413, f"image of {w}x{h} pixels exceeds the limit of {max_pixels} pixels")
    if w < 1 or h < 1:
        raise ApiError(422, f"corrupt {fmt} image: size {w}x{h}")
    return w, h



def decode_upload(upload: Upload, max_pixels: int, side: int = DECODE_SIDE
                  ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """A checked upload (:func:`check_image`) as an RGB array, its scale against the full-size image and
    the full-size image's (width, height), EXIF orientation applied.

    A JPEG whose longer side is at least twice ``side`` (phone photos: 48 MP is 8000 x 6000) is decoded
    reduced, in Pillow's draft mode (1/2, 1/4 or 1/8, in the DCT), to a longer side of ``side`` to
    ``2 * side``: a 64 MP photo then takes about 12 MP of memory instead of 64, and the face detector
    never looks at more than 640 pixels anyway. Other images are decoded in full (scale 1.0), bounded by
    ``max_pixels``. Raises 422 for an image that cannot be decoded.
    """
    try:
        return load_image_reduced(upload.data, side, max_pixels=max_pixels, name="image")
    except ImageLoadError as exc:
        raise ApiError(422, f"corrupt image: {str(exc).removeprefix('image: ')}") from None
