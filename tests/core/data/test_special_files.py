"""Promises 3 and 6 at the scan: special files are skipped with a reason and never block; folder names
that cannot round-trip through labels.txt or a CSV are refused as classes, clearly."""

from __future__ import annotations

import os
import socket

import pytest
from support.no_hang import call_without_hanging

from tlstudio.core.data.imageio import ImageError, load_rgb, make_thumbnail, open_image
from tlstudio.core.data.layout import class_name_problem, printable_name
from tlstudio.core.data.scan import scan_dataset

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")


@posix_only
def test_fifos_and_links_to_them_are_skipped_with_a_reason(image_folder, tmp_path):
    root = image_folder({"cats": 5, "dogs": 5})
    os.mkfifo(root / "cats" / "pipe.jpg")
    os.mkfifo(tmp_path / "elsewhere.png")
    os.symlink(tmp_path / "elsewhere.png", root / "dogs" / "link.png")
    os.mkfifo(root / "dogs" / "notes.txt")  # not an image name: ignored as before, never opened
    scan = call_without_hanging(lambda: scan_dataset(root))
    recs = {f.path: f for f in scan.files}
    assert recs["cats/pipe.jpg"].status == "skipped"
    assert recs["cats/pipe.jpg"].reason == "a named pipe (FIFO), not a regular file (not read)"
    assert recs["dogs/link.png"].status == "skipped" and "named pipe" in recs["dogs/link.png"].reason
    assert recs["dogs/notes.txt"].status == "ignored"
    assert scan.class_counts() == {"cats": 5, "dogs": 5}


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_a_socket_in_a_class_folder_is_skipped(image_folder):
    root = image_folder({"cats": 5, "dogs": 5})
    path = root / "cats" / "s.png"
    if len(str(path)) > 100:
        pytest.skip("temporary path too long for a Unix socket")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        rec = {f.path: f for f in scan_dataset(root).files}["cats/s.png"]
        assert rec.status == "skipped" and "socket" in rec.reason
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_link_to_a_device_is_skipped(image_folder):
    root = image_folder({"cats": 5, "dogs": 5})
    os.symlink("/dev/zero", root / "cats" / "zero.jpg")
    rec = {f.path: f for f in call_without_hanging(lambda: scan_dataset(root)).files}["cats/zero.jpg"]
    assert rec.status == "skipped" and rec.reason.startswith("a device")


@posix_only
def test_decoding_a_fifo_is_an_image_error_not_a_hang(tmp_path):
    """Training (pipeline), prediction and thumbnails all decode through these functions."""
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    for read in (open_image, lambda p: load_rgb(p, 32), make_thumbnail):
        with pytest.raises(ImageError, match=r"photo.jpg: a named pipe \(FIFO\), not a regular file"):
            call_without_hanging(lambda read=read: read(fifo), timeout=20)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("two\nlines", "line break"),
        ("carriage\rreturn", "line break"),
        ("para\u2029graph", "line break"),
        ("tab\there", "control character (U+0009)"),
        ("bell\x07", "control character (U+0007)"),
        ("evil\u202ecod.exe", "text-direction mark (U+202E)"),
        (" padded", "starts or ends with a space"),
        ("bad\udcffbytes", "not valid UTF-8"),
    ],
)
def test_class_name_problems(name, problem):
    assert problem in class_name_problem(name)
    assert "\n" not in printable_name(name) and "\r" not in printable_name(name)


@pytest.mark.parametrize("name", ["cats", "Ünïcödé 猫", "3 dogs", "a,b \"quoted\"", "=SUM(A1)", "🐱"])
def test_good_class_names(name):
    assert class_name_problem(name) is None


@pytest.mark.skipif(os.name == "nt", reason="Windows refuses such folder names itself")
def test_a_class_folder_whose_name_has_a_line_break_is_refused_clearly(image_folder, make_image):
    root = image_folder({"cats": 5, "dogs": 5})
    for i in range(5):
        make_image(root / "bad\nname" / f"x{i}.png", pattern=70 + i)
    scan = scan_dataset(root)
    assert scan.classes == ["cats", "dogs"]
    bad = [f for f in scan.files if f.class_name == "bad\nname"]
    assert len(bad) == 5 and all(f.status == "skipped" and "line break" in f.reason for f in bad)
    warning = next(w for w in scan.warnings if "cannot be a class" in w)
    assert "'bad\\nname'" in warning and "Rename the folder" in warning and "\n" not in warning
    assert not any("has no usable images" in w for w in scan.warnings)


@pytest.mark.skipif(os.name == "nt", reason="Windows refuses such folder names itself")
def test_the_scan_report_keeps_a_bad_name_on_one_line(image_folder, make_image):
    import io

    from tlstudio.commands.scan import print_report

    root = image_folder({"cats": 5, "dogs": 5})
    make_image(root / "two\nlines" / "x.png", pattern=80)
    out = io.StringIO()
    print_report(scan_dataset(root), out)
    assert "    two\\nlines/x.png\n" in out.getvalue()
    assert not any(line == "lines/x.png" for line in out.getvalue().splitlines())
