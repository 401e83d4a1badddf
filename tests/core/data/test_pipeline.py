"""The tf.data input pipeline: decoding through imageio, a bad file skipped, a bad file skipped, reproducible shuffles."""

from __future__ import annotations

import numpy as np

from tlstudio.core.data.pipeline import FileSet, SkipLog, make_dataset


def _fileset(root, names, labels):
    return FileSet([str(root / n) for n in names], list(names), np.asarray(labels, np.int32))


def test_batches_weights_and_a_corrupt_file_skipped(tmp_path, make_image):
    names = []
    for i in range(5):
        make_image(tmp_path / f"img{i}.png", size=(40, 30), color=(10 * i, 100, 200), pattern=i)
        names.append(f"img{i}.png")
    make_image(tmp_path / "cmyk.jpg", size=(40, 30), mode="CMYK", fmt="JPEG")
    names.append("cmyk.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    names.append("broken.png")
    files = _fileset(tmp_path, names, [0, 1, 0, 1, 0, 1, 0])
    log = SkipLog()
    ds = make_dataset(files, image_size=24, batch_size=3, skip_log=log, resize_policy="pad")
    assert int(ds.cardinality()) == 3  # known in advance, whatever fails to decode
    xs, ys, ws = zip(*[(x.numpy(), y.numpy(), w.numpy()) for x, y, w in ds], strict=True)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    assert x.shape == (7, 24, 24, 3) and x.dtype == np.float32
    assert list(y) == [0, 1, 0, 1, 0, 1, 0]
    assert list(w) == [1, 1, 1, 1, 1, 1, 0]  # the broken file weighs nothing
    assert x[0].max() > 100  # raw 0-255 values, not rescaled
    assert [s.path for s in log.all()] == ["broken.png"]
    assert log.drain()[0].reason and log.drain() == []
    # a second epoch does not decode it again nor record it twice
    list(ds)
    assert len(log.all()) == 1


def test_shuffle_is_reproducible(tmp_path, make_image):
    names = []
    for i in range(8):
        make_image(tmp_path / f"i{i}.png", size=(32, 32), pattern=i)
        names.append(f"i{i}.png")
    files = _fileset(tmp_path, names, list(range(8)))

    def order(seed):
        return [int(v) for _, y, _ in make_dataset(files, image_size=8, batch_size=8, shuffle=True, seed=seed) for v in y]

    assert order(3) == order(3)
    assert sorted(order(3)) == list(range(8))
