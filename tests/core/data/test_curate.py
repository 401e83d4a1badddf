"""Dataset edits on real files: classes, add, move, exclude, undo, and a kill in the middle of a move."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tlstudio.core.data import curate, edit_journal
from tlstudio.core.data.scan import scan_dataset

REPO = Path(__file__).resolve().parents[3]


def tree(root: Path) -> dict[str, bytes]:
    """Every visible file under ``root`` (relative POSIX path -> bytes)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


@pytest.fixture
def data(tmp_path, make_image):
    root = tmp_path / "pets"
    for cls, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        for i in range(4):
            make_image(root / cls / f"img{i}.png", color=colour, pattern=i)
    return root


def test_new_dataset_and_classes(tmp_path):
    root = curate.new_dataset(tmp_path / "fresh", ["apples", "pears"])
    assert sorted(p.name for p in root.iterdir()) == ["apples", "pears"]
    with pytest.raises(curate.CurateError, match="already exists"):
        curate.new_dataset(root, ["x"])
    with pytest.raises(curate.CurateError, match="cannot be a class name"):
        curate.add_class(root, "a/b")
    with pytest.raises(curate.CurateError, match="reserved"):
        curate.add_class(root, "train")
    curate.add_class(root, "plums")
    curate.rename_class(root, "pears", "quinces")
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["apples", "plums", "quinces"]
    curate.undo(root)
    curate.undo(root)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["apples", "pears"]
    assert curate.can_undo(root) is None


def test_add_images_keeps_names_unique_and_undo_drops_only_copies(data, tmp_path, make_image):
    outside = tmp_path / "downloads"
    a = make_image(outside / "img0.png", color=(200, 40, 40), pattern=9)
    b = make_image(outside / "other" / "img0.png", color=(200, 40, 40), pattern=10)
    before = tree(data)
    op = curate.add_images(data, "cats", [a, b])
    added = [dst for _, dst in op["copies"]]
    assert added == ["cats/img0_2.png", "cats/img0_3.png"]
    assert (data / "cats/img0.png").read_bytes() == before["cats/img0.png"]  # never overwritten
    assert (data / "cats/img0_2.png").read_bytes() == a.read_bytes()
    assert a.exists() and b.exists()  # the originals stay where they were
    b.write_bytes(b"changed since")  # this copy is now the only one of its picture
    curate.undo(data)
    assert tree(data) == before
    kept = curate.excluded_notes(data)
    assert [n["from"] for n in kept] == ["cats/img0_3.png"]
    assert (curate.excluded_dir(data) / kept[0]["file"]).is_file()


def test_move_to_class_relabels_and_scan_sees_it(data):
    before = tree(data)
    op = curate.move_to_class(data, ["cats/img0.png", "cats/img1.png"], "dogs")
    assert [dst for _, dst in op["moves"]] == ["dogs/img0_2.png", "dogs/img1_2.png"]
    scan = scan_dataset(data)
    assert scan.class_counts() == {"cats": 2, "dogs": 6}
    assert not any(f.path.startswith(".tlstudio") and f.status == "usable" for f in scan.files)
    assert (data / "dogs/img0_2.png").read_bytes() == before["cats/img0.png"]
    assert curate.can_undo(data) == "moved 2 image(s) to dogs"
    curate.undo(data)
    assert tree(data) == before


def test_move_into_new_class_in_a_presplit_dataset_keeps_the_split(tmp_path, make_image):
    root = tmp_path / "split"
    make_image(root / "train/cats/a.png")
    make_image(root / "val/cats/b.png", pattern=2)
    curate.move_to_class(root, ["val/cats/b.png"], "lions")
    assert (root / "val/lions/b.png").is_file()
    curate.undo(root)
    assert (root / "val/cats/b.png").is_file() and not (root / "val/lions").exists()


def test_exclude_moves_beside_the_dataset_with_a_note(data):
    before = tree(data)
    curate.exclude(data, ["dogs/img3.png"], reason="blurry")
    target = data.parent / "excluded" / "pets" / "dogs" / "img3.png"
    assert target.read_bytes() == before["dogs/img3.png"]
    assert "dogs/img3.png" not in tree(data)
    (note,) = curate.excluded_notes(data)
    assert note["from"] == "dogs/img3.png" and note["reason"] == "blurry" and note["file"] == "dogs/img3.png"
    curate.exclude(data, ["cats/img0.png"])
    curate.move_to_class(data, ["cats/img1.png"], "dogs")
    curate.undo(data)
    curate.undo(data)
    curate.undo(data)
    assert tree(data) == before
    assert curate.excluded_notes(data) == []


def test_remove_class_excludes_its_images_and_undo_brings_them_back(data):
    before = tree(data)
    curate.remove_class(data, "cats")
    assert not (data / "cats").exists()
    assert len(list((curate.excluded_dir(data) / "cats").iterdir())) == 4
    curate.undo(data)
    assert tree(data) == before


def test_bad_input_is_one_clear_message(data):
    with pytest.raises(curate.CurateError, match="not found in the dataset"):
        curate.move_to_class(data, ["cats/nope.png"], "dogs")
    with pytest.raises(curate.CurateError, match="not inside the dataset"):
        curate.exclude(data, ["../elsewhere.png"])
    with pytest.raises(curate.CurateError, match="no class named"):
        curate.rename_class(data, "horses", "ponies")
    with pytest.raises(curate.CurateError, match="already exists"):
        curate.rename_class(data, "cats", "dogs")


def test_cross_device_move_copies_then_renames(data, monkeypatch):
    """The EXDEV path (excluded folder on another disk): copy to a partial name, rename, remove source."""
    real_rename = os.rename

    def rename(src, dst):
        if not str(src).endswith(edit_journal.PARTIAL_SUFFIX):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(edit_journal.os, "rename", rename)
    before = tree(data)
    curate.exclude(data, ["cats/img2.png"])
    assert (curate.excluded_dir(data) / "cats/img2.png").read_bytes() == before["cats/img2.png"]
    assert not (data / "cats/img2.png").exists()
    assert not list(curate.excluded_dir(data).rglob("*" + edit_journal.PARTIAL_SUFFIX))


def test_recover_finishes_a_copy_interrupted_between_rename_and_unlink(data):
    """Both source and a complete target exist: recovery removes the source, keeps one file."""
    op = edit_journal.new_op("move", "moved 1 image(s) to dogs", moves=[["cats/img0.png", "dogs/img0_2.png"]])
    edit_journal.write_json(curate.state_dir(data) / edit_journal.PENDING_FILE, op)
    content = (data / "cats/img0.png").read_bytes()
    (data / "dogs/img0_2.png").write_bytes(content)
    (data / "dogs/.img0_2.png.partial").write_bytes(content[:10])  # a stale partial of an earlier try
    assert curate.recover(data)["id"] == op["id"]
    assert not (data / "cats/img0.png").exists() and (data / "dogs/img0_2.png").read_bytes() == content
    assert curate.recover(data) is None
    curate.undo(data)
    assert (data / "cats/img0.png").read_bytes() == content


_MOVER = textwrap.dedent(
    """
    import sys, time
    from tlstudio.core.data import curate

    def emit(event):
        print(event.done, flush=True)
        time.sleep(0.2)  # slow enough for the test to kill us between two files

    curate.move_to_class(sys.argv[1], [f"cats/many{i:03d}.png" for i in range(40)], "dogs", emit=emit)
    print("finished", flush=True)
    """
)


def test_kill_in_the_middle_of_a_move_loses_nothing(data, make_image):
    for i in range(40):
        make_image(data / "cats" / f"many{i:03d}.png", pattern=i + 20)
    before = tree(data)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOVER, str(data)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        lines = []
        while len(lines) < 5:
            line = proc.stdout.readline()
            assert line, "the mover ended before moving five files"
            lines.append(line.strip())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert "finished" not in lines
    pending = json.loads((curate.state_dir(data) / edit_journal.PENDING_FILE).read_text())
    assert pending["kind"] == "move"
    # Mid-way: some files moved, the rest not; every picture is still there exactly once.
    moved = [dst for src, dst in pending["moves"] if (data / dst).exists()]
    assert 5 <= len(moved) < 40
    assert sorted(tree(data).values()) == sorted(before.values())
    # The next edit (or the app opening the dataset) finishes the move.
    assert curate.recover(data)["id"] == pending["id"]
    after = tree(data)
    assert sorted(after.values()) == sorted(before.values())
    assert not any(p.startswith("cats/many") for p in after)
    assert curate.can_undo(data) == "moved 40 image(s) to dogs"
    curate.undo(data)
    assert tree(data) == before


def test_runs_on_old_labels(data):
    from tlstudio.core import run_folder
    from tlstudio.core.config import TrainConfig

    run = data.parent / "run"
    run.mkdir()
    config = TrainConfig(data_dir=str(data))
    run_folder.write_run_config(run, config, ["cats", "dogs"], {"train": ["cats/img0.png", "dogs/img0.png"]})
    run_folder.write_summary(run, {"status": "finished", "created": "2000-01-01T00:00:00+00:00"})
    assert curate.runs_on_old_labels(data, [run]) == {}
    curate.move_to_class(data, ["cats/img0.png"], "dogs")
    curate.exclude(data, ["cats/img3.png"])  # not a file of that run
    assert curate.runs_on_old_labels(data, [run]) == {str(run): 1}
    curate.undo(data)
    curate.undo(data)
    assert curate.runs_on_old_labels(data, [run]) == {}
