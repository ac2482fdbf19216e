"""Image helpers for the API: check and decode an uploaded PNG/JPEG, encode JPEG.

The size is read from the file header before decoding, so a tiny file that claims a huge image
(a decompression bomb) is refused without allocating it.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
MAX_PIXELS = 4096 * 4096
# JPEG start-of-frame markers (all but DHT C4, JPG C8, DAC CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageError(ValueError):
    """The upload is not an image we accept; the message says why (shown to the user)."""


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("truncated PNG: no IHDR header")
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageError("corrupt JPEG: bad marker")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (seg_len,) = struct.unpack(">H", data[i + 2 : i + 4])
        if seg_len < 2:
            raise ImageError("corrupt JPEG: bad segment length")
        if marker in _SOF:
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + seg_len
    raise ImageError("truncated JPEG: no frame header")


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header; ImageError when it is not a PNG or JPEG."""
    if not data:
        raise ImageError("empty upload: send a PNG or JPEG file")
    if data.startswith(PNG_MAGIC):
        return ("png", *_png_size(data))
    if data.startswith(JPEG_MAGIC):
        return ("jpeg", *_jpeg_size(data))
    raise ImageError("not a PNG or JPEG file")


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from PNG/JPEG bytes, or ImageError naming the problem."""
    fmt, w, h = image_size(data)
    if w == 0 or h == 0:
        raise ImageError(f"{fmt.upper()} declares an empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(f"image too large: {w}x{h} pixels (at most {max_pixels} pixels)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageError(f"corrupt or truncated {fmt.upper()} file")
    return img
