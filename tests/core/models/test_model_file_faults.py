"""Hostile model files: FIFOs, zip bombs and path tricks are refused before anything reads or unpacks them."""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import pytest

from tlstudio.core.models.open_model import ModelFileError, UnsafeModelError, load_model_file
from tlstudio.core.paths import cache_dir

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


def _load_in_thread(path: Path, seconds: float = 20.0) -> BaseException | None:
    """Load ``path`` in a daemon thread; fail the test if it blocks (a FIFO open would wait forever)."""
    caught: list[BaseException] = []

    def target() -> None:
        try:
            load_model_file(path)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            caught.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"opening {path.name} blocked"
    return caught[0] if caught else None


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "converted_keras.zip"])
def test_fifo_given_as_a_model_is_refused_without_blocking(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    error = _load_in_thread(fifo)
    assert isinstance(error, ModelFileError)
    assert "named pipe" in str(error)


def test_zip_bomb_keras_file_is_refused_before_unpacking(tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\0" * (50 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(UnsafeModelError, match="zip bomb"):
        load_model_file(bomb)


def test_hostile_zip_is_refused_and_nothing_is_unpacked(tmp_path):
    archive = tmp_path / "converted_keras.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("converted_keras/keras_model.h5", b"not read")
        zf.writestr("../../outside.txt", "payload")
    unpacked = cache_dir() / "unpacked-models"
    before = set(unpacked.iterdir()) if unpacked.exists() else set()  # other tests' models may be there
    with pytest.raises(UnsafeModelError, match="outside the folder"):
        load_model_file(archive)
    assert (set(unpacked.iterdir()) if unpacked.exists() else set()) == before
    assert not (tmp_path.parent / "outside.txt").exists()


def test_damaged_zip_is_a_clear_error(tmp_path):
    bad = tmp_path / "converted_keras.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ModelFileError, match="damaged or not a zip"):
        load_model_file(bad)
