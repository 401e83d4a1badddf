"""ThumbnailWorker: newest request first, RGBA bytes out, a disk cache keyed by the file's size and time."""

from __future__ import annotations

from tlstudio.workers.base import start_worker
from tlstudio.workers.thumbnail_worker import ThumbnailWorker, cache_key, thumbnail_cache_dir


def test_thumbnails_are_made_and_cached_on_disk(qtbot, recorder, make_image, tmp_path):
    picture = make_image(tmp_path / "a.png", size=(200, 100))
    broken = tmp_path / "b.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    worker = ThumbnailWorker(size=64)
    ready, failed = recorder(worker.thumbnail_ready), recorder(worker.thumbnail_failed)
    handle = start_worker(worker)
    try:
        worker.request("a", str(picture))
        worker.request("b", str(broken))
        qtbot.waitUntil(lambda: bool(ready.calls and failed.calls), timeout=10000)
    finally:
        handle.cancel()
        assert handle.wait(5000)
    key, (data, w, h) = ready.calls[0]
    assert key == "a" and (w, h) == (64, 32) and len(data) == w * h * 4
    assert failed.calls[0][0] == "b" and failed.calls[0][1]
    name = cache_key(str(picture), 64)
    assert (thumbnail_cache_dir() / name[:2] / f"{name}.png").is_file()
    # A changed file gets a new cache entry.
    make_image(picture, size=(100, 100), color=(0, 0, 255))
    assert cache_key(str(picture), 64) != name


def test_newest_request_is_served_first_and_old_ones_are_dropped():
    from tlstudio.workers import thumbnail_worker

    worker = ThumbnailWorker()
    for i in range(thumbnail_worker.MAX_PENDING + 50):
        worker.request(f"k{i}", f"/p{i}")
    worker.request("k3", "/p3")  # asked again: to the front
    assert worker._next() == ("k3", "/p3")
    assert worker._next()[0] == f"k{thumbnail_worker.MAX_PENDING + 49}"
    assert "k0" not in worker._pending
