"""``tlstudio scan DATA [--json]`` end to end on a real folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tlstudio.cli import main


def _img(path: Path, seed: int, size=(40, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _dataset(root: Path) -> Path:
    seed = 0
    for split, n in (("train", 5), ("Validation", 2)):
        for cls in ("ants", "bees"):
            for i in range(n):
                seed += 1
                _img(root / split / cls / f"{cls}{i}.png", seed)
    (root / "train" / "ants" / "broken.jpg").write_text("not a picture")
    (root / "train" / "bees" / "empty.png").write_bytes(b"")
    (root / "train" / "bees" / ".DS_Store").write_bytes(b"\0")
    (root / "Validation" / "bees" / "leak.png").write_bytes(
        (root / "train" / "bees" / "bees0.png").read_bytes()
    )
    return root


def test_report(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    assert main(["scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "split into train, val" in out
    assert "Files: 18 seen, 15 usable, 2 skipped, 1 ignored" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["ants"] == ["5", "2", "7"] and lines["bees"] == ["5", "3", "8"]
    assert "empty file (0 bytes): 1" in out and "train/bees/empty.png" in out
    assert "train/ants/broken.jpg" in out
    assert "system clutter" in out
    assert "! DATA LEAKAGE" in out


def test_json(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    assert main(["scan", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["classes"] == {"ants": 7, "bees": 8}
    assert data["splits"] == {"train": {"ants": 5, "bees": 5}, "val": {"ants": 2, "bees": 3}}
    assert len(data["files"]) == 18
    statuses = {f["path"]: f["status"] for f in data["files"]}
    assert statuses["train/ants/broken.jpg"] == "skipped" and statuses["train/bees/.DS_Store"] == "ignored"
    for f in data["files"]:
        assert {"path", "class", "split", "status", "reason"} <= set(f)
    assert any(w.startswith("DATA LEAKAGE") for w in data["warnings"])


def test_json_for_a_flat_folder(tmp_path, capsys):
    for cls in ("a", "b"):
        for i in range(5):
            _img(tmp_path / "flat" / cls / f"{i}.png", seed=ord(cls) * 100 + i)
    assert main(["scan", str(tmp_path / "flat"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["splits"] is None and data["presplit"] is False and data["warnings"] == []
    assert data["classes"] == {"a": 5, "b": 5}


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("tlstudio scan:") and "not found" in err


def test_installed_command_runs(tmp_path):
    root = _dataset(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "tlstudio", "scan", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["classes"] == {"ants": 7, "bees": 8}
    proc = subprocess.run(
        [sys.executable, "-m", "tlstudio", "scan", str(root / "train" / "ants" / "ants0.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "not a folder" in proc.stderr and "Traceback" not in proc.stderr


def test_problems_are_grouped_and_all_lists_every_file(tmp_path, capsys):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for i in range(5):
            _img(root / cls / f"{i}.png", seed=ord(cls) * 100 + i)
    for i in range(8):
        (root / "a" / f"broken{i}.jpg").write_text("text")
    assert main(["scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Skipped (cannot be used): 8" in out
    assert "not an image, despite its .jpg extension (cannot identify the content): 8" in out
    assert out.count("    a/broken") == 5 and "... and 3 more (--all lists them)" in out
    assert main(["scan", str(root), "--all"]) == 0
    assert capsys.readouterr().out.count("    a/broken") == 8


def test_deep_scan_flag(tmp_path, capsys):
    root = _dataset(tmp_path / "data")
    path = root / "train" / "ants" / "ants0.png"
    data = bytearray(path.read_bytes())
    i = data.index(b"IDAT")
    data[i + 10 : i + 40] = bytes(30)
    path.write_bytes(bytes(data))
    assert main(["scan", str(root), "--json"]) == 0
    quick = {f["path"]: f["status"] for f in json.loads(capsys.readouterr().out)["files"]}
    assert main(["scan", str(root), "--json", "--deep"]) == 0
    deep = {f["path"]: f["status"] for f in json.loads(capsys.readouterr().out)["files"]}
    assert quick["train/ants/ants0.png"] == "usable" and deep["train/ants/ants0.png"] == "skipped"
