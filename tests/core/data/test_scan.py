"""The dataset scanner on real folders of real image files written by Pillow."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlstudio.core.data import imageio
from tlstudio.core.data import scan as dataset_mod
from tlstudio.core.data.imageio import ImageError, open_image
from tlstudio.core.data.scan import LEAKAGE_PREFIX, DatasetError, DatasetScan, FileRecord, scan_dataset
from tlstudio.core.errors import Cancelled, TlstudioError


def _img(path: Path, size=(40, 40), color=(200, 30, 30), mode="RGB", fmt=None, seed=0, **save) -> Path:
    """A real image whose bytes differ with ``seed`` (a noisy patch), so files are not duplicates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = np.empty((size[1], size[0], 3), np.uint8)
    arr[:] = color
    arr[:4, :4] = rng.integers(0, 256, (min(4, size[1]), min(4, size[0]), 3))
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt, **save)
    return path


def _fill(root: Path, classes: dict[str, int], seed0: int = 0, ext=".png", size=(40, 40)) -> Path:
    seed = seed0
    for name, count in classes.items():
        for i in range(count):
            seed += 1
            _img(root / name / f"{name}_{i}{ext}", size=size, seed=seed)
    return root


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_bomb(path: Path, width=60_000, height=60_000) -> Path:
    """A tiny PNG whose header claims a huge picture."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body + _png_chunk(b"IEND", b""))
    return path


def _by_path(scan: DatasetScan) -> dict[str, FileRecord]:
    return {f.path: f for f in scan.files}


# --- layouts ------------------------------------------------------------------------------------


def test_flat_layout_counts_classes_and_relative_paths(tmp_path):
    root = _fill(tmp_path / "data", {"dogs": 6, "cats": 5})
    _img(root / "cats" / "deep" / "er" / "nested.png", seed=99)
    scan = scan_dataset(root)
    assert scan.presplit is False
    assert scan.classes == ["cats", "dogs"]
    assert scan.class_counts() == {"cats": 6, "dogs": 6}
    nested = _by_path(scan)["cats/deep/er/nested.png"]
    assert nested.class_name == "cats" and nested.split is None and nested.status == "usable"
    assert (nested.width, nested.height) == (40, 40)
    assert nested.size == (root / "cats/deep/er/nested.png").stat().st_size and nested.mtime_ns > 0
    assert all("\\" not in f.path and not f.path.startswith("/") for f in scan.files)
    assert [f.path for f in scan.files] == sorted(f.path for f in scan.files)
    assert scan.warnings == []
    assert len(scan.usable()) == 12 and scan.skipped() == []


def test_presplit_layout_case_insensitive_and_validation_is_val(tmp_path):
    root = tmp_path / "data"
    _fill(root / "TRAIN", {"a": 5, "b": 5}, seed0=0)
    _fill(root / "Validation", {"a": 2, "b": 2}, seed0=100)
    _fill(root / "test", {"a": 1, "b": 3}, seed0=200)
    (root / "README.txt").write_text("about this dataset")
    _fill(root / "extras", {"a": 1}, seed0=300)
    scan = scan_dataset(root)
    assert scan.presplit is True
    assert scan.splits() == ["train", "val", "test"]
    assert scan.class_counts("train") == {"a": 5, "b": 5}
    assert scan.class_counts("val") == {"a": 2, "b": 2}
    assert scan.class_counts("test") == {"a": 1, "b": 3}
    assert scan.class_counts() == {"a": 8, "b": 10}
    rec = _by_path(scan)["Validation/a/a_0.png"]
    assert rec.split == "val" and rec.class_name == "a"
    assert {f.split for f in scan.usable("val")} == {"val"} and len(scan.usable("val")) == 4
    extra = _by_path(scan)["extras/a/a_0.png"]
    assert extra.status == "ignored" and extra.class_name is None and extra.split is None
    assert _by_path(scan)["README.txt"].status == "ignored"
    assert any("extras/" in w and "not used" in w for w in scan.warnings)


def test_folder_named_like_a_split_without_subfolders_is_a_class(tmp_path):
    root = _fill(tmp_path / "data", {"test": 5, "other": 5})
    scan = scan_dataset(root)
    assert scan.presplit is False and scan.classes == ["other", "test"]


def test_loose_images_at_the_root_belong_to_no_class(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5, "b": 5})
    _img(root / "stray.jpg", seed=50)
    scan = scan_dataset(root)
    stray = _by_path(scan)["stray.jpg"]
    assert stray.status == "ignored" and stray.class_name is None
    assert any("not inside a class folder" in w for w in scan.warnings)


# --- formats ------------------------------------------------------------------------------------


def test_every_usable_format_is_usable(tmp_path):
    root = _fill(tmp_path / "data", {"other": 5})
    d = root / "mix"
    _img(d / "upper.JPG", seed=1)
    _img(d / "mixed.JpEg", seed=2)
    _img(d / "rgba.png", mode="RGBA", seed=3)
    _img(d / "palette.png", mode="P", seed=4)
    _img(d / "gray.jpg", mode="L", seed=5)
    _img(d / "cmyk.jpg", mode="CMYK", seed=6)
    _img(d / "photo.webp", seed=7)
    _img(d / "bitmap.bmp", seed=8)
    _img(d / "scan.tif", seed=9)
    _img(d / "scan_lzw.tiff", seed=10, compression="tiff_lzw")
    _img(d / "png_in_disguise.jpg", fmt="PNG", seed=11)
    Image.fromarray((np.arange(40 * 40).reshape(40, 40) * 40).astype(np.uint16)).save(d / "deep16.png")
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    scan = scan_dataset(root)
    mix = {Path(f.path).name: f for f in scan.files if f.class_name == "mix"}
    assert len(mix) == 13
    bad = {n: f.reason for n, f in mix.items() if f.status != "usable"}
    assert bad == {}
    assert all((f.width, f.height) == (40, 40) for f in mix.values())
    for name in mix:  # the decode path agrees with the scanner
        assert open_image(d / name).mode == "RGB"


def test_jpeg_with_data_after_the_end_marker_is_usable(tmp_path):
    """Some phones append a video or metadata after the JPEG end marker: a full decode settles it."""
    root = _fill(tmp_path / "data", {"a": 5})
    path = _img(root / "b" / "motion.jpg", seed=77)
    path.write_bytes(path.read_bytes() + os.urandom(20_000))
    scan = scan_dataset(root)
    assert _by_path(scan)["b/motion.jpg"].status == "usable"


def test_exif_rotated_jpeg_reports_displayed_size(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5})
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    _img(root / "b" / "portrait.jpg", size=(60, 40), seed=5, exif=exif.tobytes())
    rec = _by_path(scan_dataset(root))["b/portrait.jpg"]
    assert (rec.width, rec.height) == (40, 60)


# --- skipped and ignored --------------------------------------------------------------------------


def test_broken_files_are_skipped_with_reasons(tmp_path, monkeypatch):
    root = _fill(tmp_path / "data", {"good": 5})
    d = root / "bad"
    good_jpg = _img(tmp_path / "src.jpg", size=(64, 64), seed=3).read_bytes()
    good_png = _img(tmp_path / "src.png", size=(64, 64), seed=4).read_bytes()
    d.mkdir()
    (d / "truncated.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (d / "truncated.png").write_bytes(good_png[: len(good_png) - 30])
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("this is text, not a picture\n")
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    (d / "header_only.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr))
    (d / "header_only.jpg").write_bytes(good_jpg[:200])
    _png_bomb(d / "bomb.png")
    (d / "iphone.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    locked = _img(d / "locked.png", seed=9)
    real_open = imageio.open_regular

    def guarded_open(file):  # root ignores chmod, so refuse the read here
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file)

    monkeypatch.setattr(imageio, "open_regular", guarded_open)
    scan = scan_dataset(root)
    recs = {Path(f.path).name: f for f in scan.files if f.class_name == "bad"}
    assert all(f.status == "skipped" for f in recs.values()), {n: f.status for n, f in recs.items()}
    reasons = {n: f.reason for n, f in recs.items()}
    assert "truncated" in reasons["truncated.jpg"]
    assert "truncated" in reasons["truncated.png"]
    assert "truncated" in reasons["header_only.png"]
    assert "truncated" in reasons["header_only.jpg"] or "corrupt" in reasons["header_only.jpg"]
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert "not an image" in reasons["notes.jpg"] and ".jpg" in reasons["notes.jpg"]
    assert "too large" in reasons["bomb.png"] and "60000 x 60000" in reasons["bomb.png"]
    assert "HEIC" in reasons["iphone.HEIC"]
    assert reasons["locked.png"] == "permission denied"
    assert all(r.width is None for r in recs.values())
    # a folder of only broken files is not a class, and says so
    assert scan.classes == ["good"]
    assert any("'bad' is not a class" in w for w in scan.warnings)
    grouped = scan.reasons("skipped")
    assert grouped["empty file (0 bytes)"] == ["bad/empty.jpg"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_skipped(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5})
    path = _img(root / "a" / "secret.png", seed=42)
    path.chmod(0)
    try:
        rec = _by_path(scan_dataset(root))["a/secret.png"]
    finally:
        path.chmod(0o644)
    assert rec.status == "skipped" and rec.reason == "permission denied"


def test_pixel_limit_is_a_parameter(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5})
    _img(root / "a" / "big.png", size=(200, 100), seed=7)
    rec = _by_path(scan_dataset(root, max_pixels=10_000))["a/big.png"]
    assert rec.status == "skipped" and "too large" in rec.reason and "10,000" in rec.reason


def test_clutter_hidden_and_other_files_are_ignored_but_counted(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5, "b": 5})
    for name in (
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        "._a_0.png",
        ".hidden.jpg",
        "notes.txt",
        "labels.csv",
    ):
        (root / "a" / name).write_bytes(b"\0\1junk")
    _img(root / "a" / ".thumbnails" / "t.png", seed=60)
    _img(root / "__MACOSX" / "a" / "x.png", seed=61)
    scan = scan_dataset(root)
    ignored = {f.path: f.reason for f in scan.ignored()}
    assert set(ignored) == {
        "a/.DS_Store",
        "a/Thumbs.db",
        "a/desktop.ini",
        "a/._a_0.png",
        "a/.hidden.jpg",
        "a/notes.txt",
        "a/labels.csv",
        "a/.thumbnails/t.png",
        "__MACOSX/a/x.png",
    }
    assert "clutter" in ignored["a/.DS_Store"] and "clutter" in ignored["a/._a_0.png"]
    assert ignored["a/.hidden.jpg"] == "hidden file"
    assert ignored["a/notes.txt"] == "not an image file (.txt)"
    assert scan.classes == ["a", "b"] and scan.class_counts() == {"a": 5, "b": 5}
    assert scan.to_json()["counts"] == {"total": 19, "usable": 10, "skipped": 0, "ignored": 9}
    assert scan.warnings == []


def test_symlinked_folders_are_not_followed(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5, "b": 5})
    try:
        os.symlink(root / "b", root / "a" / "link_to_b", target_is_directory=True)
        os.symlink(root, root / "b" / "loop", target_is_directory=True)
        os.symlink(root / "a", root / "c", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks are not available here")
    scan = scan_dataset(root)
    assert scan.class_counts() == {"a": 5, "b": 5}
    assert scan.classes == ["a", "b"]
    assert not any("link_to_b" in f.path or "loop" in f.path for f in scan.files)
    warning = next(w for w in scan.warnings if "not followed" in w)
    assert "3 linked folder(s)" in warning and "a/link_to_b" in warning


def test_file_that_only_fails_at_full_decode_is_caught_by_open_image(tmp_path):
    """The cheap check passes (IEND is there) but the pixel data is corrupt: open_image refuses it."""
    root = _fill(tmp_path / "data", {"a": 5, "b": 5})
    path = _img(root / "a" / "corrupt.png", size=(64, 64), seed=123)
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    for i in range(idat + 8, idat + 40):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    scan = scan_dataset(root)  # does not crash, whatever it decides
    assert _by_path(scan)["a/corrupt.png"].status in ("usable", "skipped")
    with pytest.raises(ImageError, match="corrupt.png"):
        open_image(path)
    deep = _by_path(scan_dataset(root, deep=True))
    assert deep["a/corrupt.png"].status == "skipped" and deep["a/corrupt.png"].reason
    assert deep["a/a_0.png"].status == "usable"


# --- warnings -----------------------------------------------------------------------------------


def test_warnings_empty_class_few_images_imbalance_small_images(tmp_path):
    root = _fill(tmp_path / "data", {"big": 30, "tiny": 3})
    (root / "empty").mkdir()
    (root / "only_text").mkdir()
    (root / "only_text" / "notes.txt").write_text("x")
    _img(root / "big" / "thumb.png", size=(16, 40), seed=500)
    scan = scan_dataset(root)
    assert scan.classes == ["big", "tiny"]
    text = "\n".join(scan.warnings)
    assert "'empty' is not a class" in text and "'only_text' is not a class" in text
    assert "fewer than 5" in text and "'tiny' (3)" in text
    assert "imbalance" in text and "'big' has 31" in text
    assert "smaller than 32 px" in text and "big/thumb.png" in text


def test_single_class_warns(tmp_path):
    scan = scan_dataset(_fill(tmp_path / "data", {"only": 6}))
    assert any("Only one class" in w for w in scan.warnings)


def test_no_class_at_all_warns_but_reports(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.txt").write_text("x")
    scan = scan_dataset(root)
    assert scan.classes == [] and any("No class folders" in w for w in scan.warnings)


def test_no_imbalance_or_few_warning_for_balanced_data(tmp_path):
    scan = scan_dataset(_fill(tmp_path / "data", {"a": 6, "b": 30}))
    assert not any("imbalance" in w for w in scan.warnings)  # 5.0x is not over 5
    assert not any("fewer than" in w for w in scan.warnings)


def test_duplicates_within_class_across_classes_and_leakage(tmp_path):
    root = tmp_path / "data"
    _fill(root / "train", {"a": 5, "b": 5}, seed0=0)
    _fill(root / "val", {"a": 2, "b": 2}, seed0=100)
    src = root / "train" / "a" / "a_0.png"
    (root / "train" / "a" / "copy_of_a0.png").write_bytes(src.read_bytes())  # within class
    (root / "train" / "b" / "also_a1.png").write_bytes(
        (root / "train" / "a" / "a_1.png").read_bytes()
    )  # across
    (root / "val" / "a" / "leaked.png").write_bytes(
        (root / "train" / "a" / "a_2.png").read_bytes()
    )  # leakage
    scan = scan_dataset(root)
    groups = sorted(sorted(g) for g in scan.duplicates)
    assert groups == [
        ["train/a/a_0.png", "train/a/copy_of_a0.png"],
        ["train/a/a_1.png", "train/b/also_a1.png"],
        ["train/a/a_2.png", "val/a/leaked.png"],
    ]
    assert scan.warnings[0].startswith(LEAKAGE_PREFIX) and "val/a/leaked.png" in scan.warnings[0]
    assert any("different classes" in w and "train/b/also_a1.png" in w for w in scan.warnings)
    assert any("within a class" in w and "copy_of_a0.png" in w for w in scan.warnings)
    # the duplicate files are still usable: the warning is what tells the user
    assert scan.class_counts("train") == {"a": 6, "b": 6}


def test_same_size_but_different_bytes_are_not_duplicates(tmp_path):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(5):
            p = root / cls / f"{i}.bin.bmp"
            _img(p, size=(40, 40), seed=ord(cls) * 100 + i, fmt="BMP")  # BMP: identical sizes
    scan = scan_dataset(root)
    assert len({f.size for f in scan.usable()}) == 1
    assert scan.duplicates == [] and not any("identical" in w for w in scan.warnings)


# --- errors, progress, cancel, JSON ---------------------------------------------------------------


def test_missing_or_non_folder_root_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        scan_dataset(tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        scan_dataset(f)
    assert issubclass(DatasetError, TlstudioError)


def test_progress_is_monotonic_and_complete(tmp_path):
    root = _fill(tmp_path / "data", {"a": 12, "b": 12})
    (root / "b" / "dup.png").write_bytes((root / "a" / "a_0.png").read_bytes())
    calls: list[tuple[int, int]] = []
    scan_dataset(root, progress=lambda d, t: calls.append((d, t)), workers=2)
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] and calls[-1][1] >= 25
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert all(0 <= d <= t for d, t in calls)


def test_cancel_before_and_during_the_scan(tmp_path):
    root = _fill(tmp_path / "data", {"a": 20, "b": 20})
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        scan_dataset(root, cancel=stop)

    stop = threading.Event()
    seen: list[int] = []

    def progress(done, total):
        seen.append(done)
        if done >= 3:
            stop.set()

    with pytest.raises(Cancelled):
        scan_dataset(root, progress=progress, cancel=stop, workers=1)
    assert max(seen) < 40


def test_to_json_shape(tmp_path):
    root = tmp_path / "data"
    _fill(root / "train", {"a": 5, "b": 5})
    _fill(root / "val", {"a": 1, "b": 1}, seed0=50)
    (root / "train" / "a" / "bad.jpg").write_text("nope")
    data = scan_dataset(root).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["classes"] == {"a": 6, "b": 6}
    assert data["splits"] == {"train": {"a": 5, "b": 5}, "val": {"a": 1, "b": 1}}
    assert data["presplit"] is True and isinstance(data["warnings"], list)
    bad = next(f for f in data["files"] if f["path"] == "train/a/bad.jpg")
    assert bad["status"] == "skipped" and bad["class"] == "a" and bad["split"] == "train" and bad["reason"]
    assert set(bad) >= {"path", "class", "split", "status", "reason"}
    assert scan_dataset(root / "train").to_json()["splits"] is None


def test_files_without_extension(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5, "b": 5})
    (root / "a" / "LICENSE").write_text("MIT")
    (root / "a" / "EMPTY").write_bytes(b"")
    _img(root / "a" / "IMG_0001", seed=31, fmt="JPEG")
    recs = _by_path(scan_dataset(root))
    assert recs["a/LICENSE"].status == "ignored" and "no extension" in recs["a/LICENSE"].reason
    assert recs["a/EMPTY"].status == "ignored"
    assert recs["a/IMG_0001"].status == "usable"


def test_16_bit_rgb_png_is_usable(tmp_path):
    root = _fill(tmp_path / "data", {"a": 5})
    w, h = 40, 40
    raw = b"".join(b"\0" + np.full((w, 3), [65535, 32896, 0], ">u2").tobytes() for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path = root / "b" / "rgb16.png"
    path.parent.mkdir()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )
    assert _by_path(scan_dataset(root))["b/rgb16.png"].status == "usable"
    assert open_image(path).getpixel((0, 0)) == (255, 128, 0)


def test_large_same_size_files_differing_after_the_first_bytes(tmp_path):
    """Same size and same first 64 KiB: only the full comparison tells them apart."""
    root = tmp_path / "data"
    arr = np.zeros((200, 200, 3), np.uint8)  # 120 KB of pixels: BMP files of identical size
    for cls in ("a", "b"):
        for i in range(5):
            arr[0, 0] = (i, ord(cls), 9)  # BMP stores the top row last: the files differ only at the end
            path = root / cls / f"{i}.bmp"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
    (root / "b" / "copy.bmp").write_bytes((root / "a" / "3.bmp").read_bytes())
    first = (root / "a" / "0.bmp").read_bytes()
    assert first[:65536] == (root / "b" / "4.bmp").read_bytes()[:65536] and len(first) > 65536
    scan = scan_dataset(root)
    assert scan.duplicates == [["a/3.bmp", "b/copy.bmp"]]


def test_single_class_with_subfolders_hints_at_the_right_folder(tmp_path):
    _fill(tmp_path / "outer" / "dataset", {"cats": 5, "dogs": 5})
    scan = scan_dataset(tmp_path / "outer")
    assert scan.classes == ["dataset"]
    assert any("Only one class" in w and "did you mean to pick 'dataset'" in w for w in scan.warnings)


def test_unreadable_folders(tmp_path, monkeypatch):
    root = _fill(tmp_path / "data", {"a": 5, "b": 5, "locked": 5})
    real_scandir = os.scandir
    refused = {str(root / "locked")}

    def scandir(path="."):
        if str(path) in refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(dataset_mod.os, "scandir", scandir)
    scan = scan_dataset(root)
    assert scan.classes == ["a", "b"]
    assert any("could not be read" in w and "locked/" in w for w in scan.warnings)
    refused.add(str(root.resolve()))
    with pytest.raises(DatasetError, match="cannot read folder.*permission denied"):
        scan_dataset(root)


def test_jpeg_cut_after_its_exif_thumbnail_is_truncated(tmp_path):
    """The thumbnail's end marker near the cut must not pass for the end of the picture."""
    root = _fill(tmp_path / "data", {"a": 5})
    rng = np.random.default_rng(5)
    thumb = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    src = _img(tmp_path / "src.jpg", size=(400, 300), seed=8)
    # embed a small JPEG in a comment segment before the picture, as EXIF thumbnails are
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=90)
    data = src.read_bytes()
    segment = b"\xff\xfe" + (len(buf.getvalue()) + 2).to_bytes(2, "big") + buf.getvalue()
    data = data[:2] + segment + data[2:]
    sos = data.index(b"\xff\xda", len(segment))
    cut = root / "b" / "cut.jpg"
    cut.parent.mkdir()
    cut.write_bytes(data[: sos + 200])  # header, thumbnail and a little image data
    assert b"\xff\xd9" in data[max(0, sos + 200 - 4096) : sos + 200]
    rec = _by_path(scan_dataset(root))["b/cut.jpg"]
    assert rec.status == "skipped" and "truncated" in rec.reason


def test_presplit_class_missing_from_a_split(tmp_path):
    root = tmp_path / "data"
    _fill(root / "train", {"a": 5, "b": 5})
    _fill(root / "val", {"a": 2}, seed0=40)
    (root / "val" / "b").mkdir()
    _fill(root / "val", {"c": 2}, seed0=60)
    scan = scan_dataset(root)
    assert scan.classes == ["a", "b", "c"]
    text = "\n".join(scan.warnings)
    assert "train/ and val/ have different classes (only in train/: 'b'; only in val/: 'c')" in text
    assert "training refuses this" in text
    assert "Class folder" not in text
