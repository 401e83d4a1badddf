"""The one place where tlstudio decodes image files.

The scanner, the training pipeline, prediction and the GUI thumbnails all read pixels through
:func:`open_image`, so every part of the program sees the same image: 8-bit RGB, EXIF orientation
applied, the first frame of an animation, transparency composited on white, and a clear
:class:`ImageError` (never a Pillow traceback or warning) when a file cannot be used.

Sizes given as a pair are ``(height, width)``, the order of array shapes and Keras input shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from tlstudio.core.errors import TlstudioError
from tlstudio.core.safe_files import NotRegularFileError, open_regular

#: Images with more pixels than this are refused (a guard against decompression bombs:
#: a tiny compressed file that would need gigabytes of memory once decoded).
DEFAULT_MAX_PIXELS = 150_000_000

#: Resize policies understood by :func:`resize_image`.
RESIZE_POLICIES = ("stretch", "crop", "pad")

# tlstudio enforces its own, explicit pixel limit (``max_pixels``) before any decode and reports
# it as an ImageError. Pillow's global check would instead emit a DecompressionBombWarning or raise
# its own error from inside Image.open, so it is switched off here in favour of ours.
Image.MAX_IMAGE_PIXELS = None
# A truncated file is an error, not a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_WHITE = (255, 255, 255)
_TAIL_BYTES = 4096  # read from a file's end to find its end marker
_RESAMPLE = Image.Resampling.BILINEAR


class ImageError(TlstudioError):
    """An image file could not be read; the message says which file and why, in one line.

    ``reason`` is the "why" alone (without the file name), for lists that already show the file.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _name(path: str | os.PathLike[str]) -> str:
    return Path(path).name


def pixel_limit_message(width: int, height: int, max_pixels: int) -> str:
    """The reason given for an image refused by the pixel limit."""
    return (
        f"too large: {width} x {height} is over the limit of {max_pixels:,} pixels (decompression bomb guard)"
    )


def describe_error(exc: BaseException) -> str:
    """A short human reason for an exception raised while opening or decoding an image."""
    if isinstance(exc, NotRegularFileError):
        return exc.reason
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (the content is not a format Pillow can read)"
    if isinstance(exc, Image.DecompressionBombError):
        return "too large (decompression bomb guard)"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "truncated file (the image data ends early)"
    return f"corrupt image data ({text})"


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """The image format announced by a file's first bytes (its "magic number"), or None."""
    try:
        with open_regular(path) as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    return None


def explain_failure(path: str | os.PathLike[str], exc: BaseException) -> str:
    """Like :func:`describe_error`, but a file that starts like an image yet cannot be identified
    is called what it is: a broken image (often cut off after its header), not a non-image."""
    if isinstance(exc, UnidentifiedImageError):
        try:
            if os.path.getsize(path) == 0:
                return "empty file (0 bytes)"
        except OSError:
            pass
        fmt = sniff_format(path)
        if fmt is not None:
            return f"truncated or corrupt {fmt} file (its header cannot be read)"
    return describe_error(exc)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparency (RGBA, LA, palette with a transparent index) is composited on white;
    16-bit and 32-bit grey levels are scaled to 0-255 rather than clipped; CMYK, YCbCr and
    others go through Pillow's own conversion.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("L", "RGB", "1") and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr.astype(np.float64)
            peak = float(np.nanmax(arr)) if arr.size else 0.0
            arr = arr * 255.0 if peak <= 1.0 else arr
            grey = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
        else:
            arr = arr.astype(np.int64)
            peak = int(arr.max()) if arr.size else 0
            # 16-bit data (or 16-bit data stored in a 32-bit "I" image) is scaled down; data that
            # already fits in 8 bits is kept as is.
            grey = (np.clip(arr, 0, 65535) // 257 if peak > 255 else np.clip(arr, 0, 255)).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return img.convert("RGB")


def open_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode an image file into an 8-bit RGB Pillow image.

    Parameters
    ----------
    path
        The image file. Its extension does not matter: the content decides the format.
    max_pixels
        Refuse images with more pixels than this (decompression bomb guard).
    draft
        Optional ``(height, width)`` the caller will shrink the image to. JPEG files are then
        decoded directly at a reduced scale that is still at least this size on both sides
        (whatever the EXIF orientation), which is several times faster for large photos.

    Returns
    -------
    PIL.Image.Image
        A fully loaded RGB image, EXIF orientation applied, first frame only.

    Raises
    ------
    ImageError
        The file is missing, unreadable, not an image, truncated, corrupt or too large.
    """
    try:
        # Only a regular file is opened, without blocking: a FIFO or a device is refused here.
        with open_regular(path) as fh, Image.open(fh) as im:
            width, height = im.size
            if width * height > max_pixels:
                reason = pixel_limit_message(width, height, max_pixels)
                raise ImageError(f"{_name(path)}: {reason}", reason)
            if draft is not None and im.format in ("JPEG", "MPO"):
                side = max(int(draft[0]), int(draft[1]), 1)
                im.draft("RGB", (side, side))
            im.seek(0)
            im.load()
            try:
                oriented = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block must not cost the picture
                oriented = im.copy()
            if oriented is None:  # pragma: no cover - only returned with in_place=True
                oriented = im.copy()
            rgb = to_rgb(oriented)
            if rgb is im:
                rgb = im.copy()
            return rgb
    except ImageError:
        raise
    except Exception as exc:
        # Pillow raises many types for malformed files (MemoryError too): all become ImageError
        reason = explain_failure(path, exc)
        raise ImageError(f"{_name(path)}: {reason}", reason) from exc


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        height = width = size
    else:
        height, width = (int(size[0]), int(size[1]))
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    return height, width


def resize_image(img: Image.Image, size: int | tuple[int, int], policy: str = "stretch") -> Image.Image:
    """Resize an image to exactly ``size`` following a policy.

    Parameters
    ----------
    img
        The image (any mode; RGB in practice).
    size
        ``S`` for a square, or ``(height, width)``.
    policy
        ``"stretch"``: scale both sides independently (the aspect ratio changes);
        ``"crop"``: cut the centre to the target aspect ratio, then scale;
        ``"pad"``: keep the aspect ratio and pad the borders with black.

    Returns
    -------
    PIL.Image.Image
        A new image of size ``(width, height)`` in Pillow's terms.
    """
    height, width = _pair(size)
    if policy == "stretch":
        if img.size == (width, height):
            return img.copy()
        return img.resize((width, height), _RESAMPLE)
    if policy == "crop":
        return ImageOps.fit(img, (width, height), method=_RESAMPLE, centering=(0.5, 0.5))
    if policy == "pad":
        fill = (
            0 if img.mode in ("L", "1", "I", "F") or img.mode.startswith("I;") else (0,) * len(img.getbands())
        )
        return ImageOps.pad(img, (width, height), method=_RESAMPLE, color=fill, centering=(0.5, 0.5))
    raise ValueError(f"unknown resize policy {policy!r}: use one of {', '.join(RESIZE_POLICIES)}")


def load_rgb(
    path: str | os.PathLike[str],
    size: int | tuple[int, int],
    policy: str = "stretch",
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read an image file as a ``uint8`` array of shape ``(height, width, 3)``.

    Parameters
    ----------
    path
        The image file.
    size
        ``S`` or ``(height, width)`` of the result.
    policy
        Resize policy, see :func:`resize_image`.
    max_pixels
        Pixel limit, see :func:`open_image`.

    Raises
    ------
    ImageError
        The file cannot be used (see :func:`open_image`).
    """
    height, width = _pair(size)
    img = open_image(path, max_pixels=max_pixels, draft=(height, width))
    arr = np.asarray(resize_image(img, (height, width), policy), dtype=np.uint8)
    return np.ascontiguousarray(arr.reshape(height, width, 3))


def make_thumbnail(
    path: str | os.PathLike[str], size: int = 128, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """A small RGB preview whose longer side is at most ``size`` pixels (aspect ratio kept).

    Raises
    ------
    ImageError
        The file cannot be used (see :func:`open_image`).
    """
    img = open_image(path, max_pixels=max_pixels, draft=(size, size))
    img.thumbnail((size, size), _RESAMPLE)
    return img


# --- checking a file without decoding it ------------------------------------------------------


@dataclass(frozen=True)
class ImageHeader:
    """What :func:`probe_image` learned: the format and the size as displayed."""

    format: str | None
    width: int  #: EXIF orientation taken into account
    height: int


def _looks_complete(fmt: str | None, fh: BinaryIO, size: int, data_start: int = 0) -> bool | None:
    """Cheap completeness check from the file's end. None: no such check for this format.

    ``data_start`` is where the image data begins (for JPEG, just after the start-of-scan
    header): an end marker before it belongs to an embedded EXIF thumbnail, not to the image.
    """
    if fmt in ("JPEG", "MPO", "PNG", "GIF"):
        start = max(0, size - _TAIL_BYTES, data_start)
        if start >= size:
            return False
        fh.seek(start)
        tail = fh.read()
        if fmt == "PNG":
            return b"IEND" in tail
        if fmt == "GIF":
            return tail.rstrip(b"\x00").endswith(b";")
        return b"\xff\xd9" in tail
    if fmt == "WEBP":
        fh.seek(0)
        head = fh.read(12)
        return len(head) >= 12 and head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 <= size
    return None


def probe_image(
    path: str | os.PathLike[str], size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, deep: bool = False
) -> ImageHeader:
    """Check that a file is a complete, usable image, reading as little of it as possible.

    The header gives the format and size; a cheap look at the file's end (the JPEG end marker,
    the PNG ``IEND`` chunk, the GIF trailer, the WebP RIFF size) tells whether it is complete.
    Only files that fail that check, and formats without such a marker, are fully decoded.

    Parameters
    ----------
    path
        The file.
    size
        Its size in bytes (known from the folder walk).
    max_pixels
        Refuse images with more pixels than this (decompression bomb guard).
    deep
        Decode every image (JPEG at reduced scale) instead of trusting a good header and end
        marker: slower, but also catches damage in the middle of a file.

    Raises
    ------
    ImageError
        The file is not a usable image; ``reason`` says why, without the file name.
    """
    try:
        with open_regular(path) as fh, Image.open(fh) as im:
            fmt = im.format
            # Pillow stops reading a JPEG header at the start of scan: the entropy-coded data follows
            data_start = fh.tell() if fmt == "JPEG" else 0
            width, height = im.size
            if width < 1 or height < 1:
                reason = "not a valid image (zero width or height)"
                raise ImageError(f"{_name(path)}: {reason}", reason)
            if width * height > max_pixels:
                reason = pixel_limit_message(width, height, max_pixels)
                raise ImageError(f"{_name(path)}: {reason}", reason)
            if fmt in ("JPEG", "MPO") and "exif" in im.info:
                try:
                    orientation = int(im.getexif().get(0x0112, 1) or 1)
                except Exception:
                    orientation = 1
                if orientation in (5, 6, 7, 8):  # shown rotated by 90 degrees
                    width, height = height, width
            if deep or _looks_complete(fmt, fh, size, data_start) is not True:
                # Incomplete-looking files (some cameras also append data after the end marker) and
                # formats without an end marker get a full decode, at reduced scale for JPEG.
                if fmt in ("JPEG", "MPO"):
                    im.draft("RGB", (64, 64))
                im.seek(0)
                im.load()
            return ImageHeader(fmt, width, height)
    except ImageError:
        raise
    except Exception as exc:
        reason = explain_failure(path, exc)
        raise ImageError(f"{_name(path)}: {reason}", reason) from exc
