"""Only regular files are read: real FIFOs, devices, sockets and folders are refused at once, never waited on."""

from __future__ import annotations

import os
import socket

import pytest
from support.no_hang import call_without_hanging

from tlstudio.core.safe_files import (
    FileTooLargeError,
    NotRegularFileError,
    check_regular,
    not_regular_reason,
    open_regular,
    read_bytes,
)

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")


def test_a_regular_file_is_read(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"\x00\x01data")
    assert read_bytes(path) == b"\x00\x01data"
    with open_regular(path) as fh:
        assert fh.read(2) == b"\x00\x01"
    assert check_regular(path).st_size == 6


@posix_only
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError) as info:
        call_without_hanging(lambda: read_bytes(fifo))
    assert "named pipe" in str(info.value) and "photo.jpg" in str(info.value)
    assert isinstance(info.value, OSError)  # callers that skip OSError skip it too


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_that_never_ends_is_refused():
    with pytest.raises(NotRegularFileError, match="device"):
        call_without_hanging(lambda: read_bytes("/dev/zero"))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.sock"
    if len(str(path)) > 100:
        pytest.skip("temporary path too long for a Unix socket")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(OSError) as info:  # NotRegularFileError, or ENXIO from the open itself
            read_bytes(path)
        assert isinstance(info.value, NotRegularFileError) or info.value.errno is not None
        assert "socket" in not_regular_reason(os.stat(path).st_mode)
    finally:
        server.close()


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(NotRegularFileError, match="folder"):
        read_bytes(tmp_path)


def test_missing_file_is_a_plain_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "nope")


def test_size_limit_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 1000)
    assert read_bytes(path, max_bytes=1000) == b"x" * 1000
    with pytest.raises(FileTooLargeError, match="1,000 bytes is over the limit of 999"):
        read_bytes(path, max_bytes=999)


def test_reason_for_a_regular_file_is_none(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    assert not_regular_reason(os.stat(path).st_mode) is None
