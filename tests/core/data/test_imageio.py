"""The single decode path: every mode becomes 8-bit RGB, failures become one-line ImageErrors."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlstudio.core.data import imageio
from tlstudio.core.data.imageio import ImageError, load_rgb, make_thumbnail, open_image, resize_image
from tlstudio.core.errors import TlstudioError

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _close(a, b, tol=6) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


# --- modes ----------------------------------------------------------------------------------------


def test_rgba_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    img.putpixel((1, 1), (255, 0, 0, 255))
    img.putpixel((2, 2), (0, 0, 0, 128))
    out = open_image(_save(img, tmp_path / "a.png"))
    assert out.mode == "RGB" and out.size == (8, 8)
    assert out.getpixel((0, 0)) == WHITE
    assert out.getpixel((1, 1)) == RED
    assert _close(out.getpixel((2, 2)), (127, 127, 127), tol=2)


def test_palette_with_transparency_and_grey_with_alpha(tmp_path):
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    out = open_image(_save(pal, tmp_path / "p.png", transparency=0))
    assert out.getpixel((0, 0)) == WHITE and out.getpixel((3, 3)) == GREEN
    la = Image.new("LA", (4, 4), (50, 0))
    assert open_image(_save(la, tmp_path / "la.png")).getpixel((0, 0)) == WHITE
    plain = Image.new("P", (4, 4), 1)
    plain.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert open_image(_save(plain, tmp_path / "plain.gif")).getpixel((0, 0)) == (10, 20, 30)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    arr = np.zeros((4, 4), np.uint16)
    arr[0, 0], arr[0, 1], arr[0, 2] = 65535, 32896, 257
    path = _save(Image.fromarray(arr), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    out = open_image(path)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == WHITE and out.getpixel((1, 0)) == (128, 128, 128)
    assert out.getpixel((2, 0)) == (1, 1, 1) and out.getpixel((3, 3)) == BLACK


def test_cmyk_grey_and_bilevel_become_rgb(tmp_path):
    cmyk = open_image(_save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "c.jpg"))
    assert cmyk.mode == "RGB" and _close(cmyk.getpixel((4, 4)), RED, tol=10)
    grey = open_image(_save(Image.new("L", (8, 8), 77), tmp_path / "g.jpg"))
    assert grey.mode == "RGB" and _close(grey.getpixel((4, 4)), (77, 77, 77), tol=2)
    bilevel = open_image(_save(Image.new("1", (8, 8), 1), tmp_path / "b.tif"))
    assert bilevel.getpixel((0, 0)) == WHITE
    tiff16 = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert open_image(_save(tiff16, tmp_path / "deep.tif")).getpixel((0, 0)) == WHITE


def test_first_frame_of_an_animation(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in (RED, BLUE, GREEN)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert _close(open_image(path).getpixel((5, 5)), RED, tol=10)
    webp = tmp_path / "anim.webp"
    frames[0].save(webp, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert _close(open_image(webp).getpixel((5, 5)), RED, tol=10)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (60, 30), BLUE)
    img.paste(RED, (0, 0, 20, 30))  # the left third is red
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: red ends up on top
    out = open_image(_save(img, tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95))
    assert out.size == (30, 60)
    assert _close(out.getpixel((15, 5)), RED, tol=30) and _close(out.getpixel((15, 55)), BLUE, tol=30)


def test_png_named_jpg_and_uppercase_extension(tmp_path):
    png = _save(Image.new("RGB", (5, 5), GREEN), tmp_path / "really_png.JPG", format="PNG")
    assert open_image(png).getpixel((2, 2)) == GREEN


# --- failures -----------------------------------------------------------------------------------


def _assert_one_line(exc: pytest.ExceptionInfo, name: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.startswith(name + ":")
    assert isinstance(exc.value, TlstudioError)
    return text


def test_failures_are_one_line_image_errors(tmp_path):
    good = _save(Image.new("RGB", (64, 64), RED), tmp_path / "good.jpg").read_bytes()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    cases = {
        "missing.jpg": "not found",
        "empty.jpg": "empty file",
        "text.png": "not an image",
        "cut.jpg": "truncated",
    }
    for name, expected in cases.items():
        with pytest.raises(ImageError) as exc:
            open_image(tmp_path / name)
        assert expected in _assert_one_line(exc, name)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ImageError):
        open_image(folder)


def test_pixel_limit_gives_a_clear_message_and_no_pillow_warning(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 99))
        + _chunk(b"IEND", b"")
    )
    normal = _save(Image.new("RGB", (300, 200), RED), tmp_path / "normal.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError) as exc:
            open_image(bomb)
        assert "100000 x 100000" in _assert_one_line(exc, "bomb.png") and "decompression bomb" in str(
            exc.value
        )
        with pytest.raises(ImageError, match="too large.*50,000 pixels"):
            open_image(normal, max_pixels=50_000)
        assert open_image(normal, max_pixels=60_000).size == (300, 200)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_corrupt_pixel_data_and_broken_header(tmp_path):
    path = _save(Image.effect_noise((64, 64), 60).convert("RGB"), tmp_path / "c.png")
    data = bytearray(path.read_bytes())
    i = data.index(b"IDAT")
    data[i + 10 : i + 30] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        open_image(path)
    _assert_one_line(exc, "c.png")
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    header_only = tmp_path / "h.png"
    header_only.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr))
    with pytest.raises(ImageError, match="truncated"):
        open_image(header_only)
    assert imageio.sniff_format(header_only) == "PNG"


def test_permission_denied(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "locked.png")

    def refuse(fp, *a, **k):
        raise PermissionError(13, "Permission denied", str(fp))

    monkeypatch.setattr(imageio.Image, "open", refuse)
    with pytest.raises(ImageError, match="locked.png: permission denied"):
        open_image(path)


# --- resizing -----------------------------------------------------------------------------------


def _bands(width=90, height=30) -> Image.Image:
    """Three vertical bands: red | green | blue."""
    img = Image.new("RGB", (width, height), GREEN)
    img.paste(RED, (0, 0, width // 3, height))
    img.paste(BLUE, (2 * width // 3, 0, width, height))
    return img


def test_stretch_keeps_everything_and_changes_aspect():
    out = resize_image(_bands(), 30, "stretch")
    assert out.size == (30, 30)
    assert _close(out.getpixel((2, 15)), RED) and _close(out.getpixel((27, 15)), BLUE)


def test_crop_takes_the_centre():
    out = resize_image(_bands(), 30, "crop")
    assert out.size == (30, 30)
    assert all(_close(out.getpixel((x, 15)), GREEN) for x in (0, 15, 29))


def test_pad_keeps_aspect_with_black_bars():
    out = resize_image(_bands(), 30, "pad")
    assert out.size == (30, 30)
    assert out.getpixel((15, 0)) == BLACK and out.getpixel((15, 29)) == BLACK
    assert _close(out.getpixel((1, 15)), RED) and _close(out.getpixel((15, 15)), GREEN)
    tall = resize_image(Image.new("RGB", (10, 40), RED), (20, 40), "pad")  # (height, width)
    assert tall.size == (40, 20) and tall.getpixel((0, 10)) == BLACK and tall.getpixel((20, 10)) == RED


def test_size_pair_is_height_width_and_bad_policy_is_refused():
    assert resize_image(_bands(), (20, 50), "stretch").size == (50, 20)
    assert resize_image(_bands(), (20, 50), "crop").size == (50, 20)
    with pytest.raises(ValueError, match="policy"):
        resize_image(_bands(), 10, "squash")


def test_load_rgb_array_and_thumbnail(tmp_path):
    path = _save(_bands(300, 100), tmp_path / "b.jpg", quality=95)
    arr = load_rgb(path, (20, 30))
    assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8
    assert _close(arr[10, 1], RED, tol=20) and _close(arr[10, 28], BLUE, tol=20)
    sq = load_rgb(path, 24, "crop")
    assert sq.shape == (24, 24, 3) and _close(sq[12, 12], GREEN, tol=20)
    thumb = make_thumbnail(path, 64)
    assert thumb.mode == "RGB" and thumb.size == (64, 21)
    small = _save(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), tmp_path / "s.png")
    assert make_thumbnail(small).size == (10, 10) and make_thumbnail(small).getpixel((0, 0)) == WHITE


def test_draft_decoding_keeps_enough_resolution(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    path = _save(_bands(900, 300), tmp_path / "big.jpg", exif=exif.tobytes())
    img = open_image(path, draft=(64, 64))
    assert min(img.size) >= 64 and img.size[1] > img.size[0]  # rotated to portrait, still >= 64
    assert load_rgb(path, 64).shape == (64, 64, 3)
