"""Images decoded ahead on a thread: taken in order, skipped ones dropped, broken files reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlstudio.core.train import image_prefetch
from tlstudio.core.train.image_prefetch import ImagePrefetch, decoded_batches


def test_prefetched_images_are_taken_in_order_and_unneeded_ones_are_dropped(image_folder):
    data = image_folder({"a": 4, "b": 2}, size=(40, 30))
    paths = sorted(str(p) for p in data.rglob("*.png"))
    prefetch = ImagePrefetch(paths[:4], 16, "stretch")
    image, reason = prefetch.take(paths[1])  # paths[0] was cached after all: dropped
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and reason is None
    assert prefetch.take(paths[5])[0].shape == (16, 16, 3)  # not planned: decoded on the spot
    again, _ = prefetch.take(paths[0])  # already passed: decoded on the spot too
    assert np.array_equal(again, image_prefetch.decode(paths[0], 16, "stretch")[0])
    prefetch.stop()


def test_batches_come_in_order_and_a_broken_file_says_why(image_folder, tmp_path):
    data = image_folder({"a": 5}, size=(40, 30))
    paths = sorted(str(p) for p in data.rglob("*.png"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    paths.insert(2, str(broken))
    batches = list(decoded_batches(paths, 4, 16, "stretch", ImagePrefetch(paths, 16, "stretch")))
    assert [len(b) for b in batches] == [4, 2]
    flat = [item for b in batches for item in b]
    assert flat[2][0] is None and flat[2][1] and "\n" not in flat[2][1]
    expected = image_prefetch.decode(paths[4], 16, "stretch")[0]
    assert np.array_equal(flat[4][0], expected)


def test_start_prefetch_plans_every_uncached_image_by_its_dataset_relative_key(image_folder):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.data.pipeline import FileSet
    from tlstudio.core.train.cached_features import start_prefetch

    data = image_folder({"a": 3, "b": 2}, size=(40, 30))
    abs_paths = sorted(str(p) for p in data.rglob("*.png"))
    rel_paths = [str(Path(p).relative_to(data)) for p in abs_paths]
    empty = FileSet([], [], np.zeros(0, np.int32))
    files = {"train": FileSet(abs_paths, rel_paths, np.zeros(5, np.int32)), "val": empty, "test": empty}
    prefetch = start_prefetch(TrainConfig(data_dir=str(data)), files)  # absolute paths once made this raise
    assert prefetch is not None
    try:
        assert prefetch.take(abs_paths[0])[0].shape[-1] == 3
    finally:
        prefetch.stop()
