"""``tlstudio audit DATA [--json]`` end to end on a real folder with a planted label error and a leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tlstudio.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path, image_folder):
    root = image_folder({"blue": 10, "red": 10}, splits=("train", "val"), size=(64, 64))
    # A red picture filed under blue: the label error the audit must put first.
    with Image.open(root / "train/red/red_train_007.png") as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "train/blue/mislabelled.png")
    # A resized copy of a training picture in validation: a leak.
    with Image.open(root / "train/blue/blue_train_002.png") as im:
        im.resize((100, 100)).save(root / "val/blue/copy.png")
    return root


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_json_schema(data, capsys):
    before = _files(data)
    assert main(["audit", str(data), "--input-size", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert _files(data) == before  # DATA never changes
    assert isinstance(out["suspects"], list) and isinstance(out["near_duplicates"], list)
    for s in out["suspects"]:
        assert set(s) == {"path", "class", "suggested", "score"}
        assert not os.path.isabs(s["path"]) and (data / s["path"]).is_file()
        assert s["class"] != s["suggested"] and 0.0 <= s["score"] <= 1.0
    scores = [s["score"] for s in out["suspects"]]
    assert scores == sorted(scores, reverse=True)
    assert out["suspects"][0] == {**out["suspects"][0], "path": "train/blue/mislabelled.png", "class": "blue",
                                  "suggested": "red"}
    for d in out["near_duplicates"]:
        assert set(d) == {"paths", "similarity", "cross_split", "cross_class"}
        assert all(not os.path.isabs(p) and (data / p).is_file() for p in d["paths"])
        assert isinstance(d["cross_split"], bool) and isinstance(d["cross_class"], bool)
        assert 0.0 < d["similarity"] <= 1.0
    leak = [d for d in out["near_duplicates"] if set(d["paths"]) >= {"train/blue/blue_train_002.png", "val/blue/copy.png"}]
    assert leak and leak[0]["cross_split"]


def test_report_and_bad_input(data, capsys, tmp_path):
    assert main(["audit", str(data), "--input-size", "64"]) == 0
    text = capsys.readouterr().out
    assert "train/blue/mislabelled.png  blue -> looks like red" in text
    assert "ACROSS SPLITS" in text
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "tlstudio", "audit", str(tmp_path / "nowhere")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"tlstudio audit: folder not found: {tmp_path / 'nowhere'}"]
