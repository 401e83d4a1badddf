"""``tlstudio predict``: text, JSON, CSV and Grad-CAM output; one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.predict_run import COLORS, trained_run, write_image

from tlstudio.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    write_image(folder / "red.png", COLORS["red"])
    write_image(folder / "sub" / "green.jpg", COLORS["green"])
    return folder


def test_text_output_for_files_and_folders(run_dir, images, capsys):
    blue = write_image(images.parent / "blue.png", COLORS["blue"])
    assert main(["predict", str(run_dir), str(images), str(blue), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    by_name = {Path(line.split(": ")[0]).name: line for line in lines}
    assert by_name["red.png"].split(": ")[1].startswith("red ")
    assert by_name["green.jpg"].split(": ")[1].startswith("green ")
    assert by_name["blue.png"].split(": ")[1].startswith("blue ")
    assert by_name["red.png"].count(":") == 1 + 2  # "path: ..." and two label:prob pairs


def test_json_threshold_and_bad_files(run_dir, images, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG nope")
    from PIL import Image

    stripes = Image.new("RGB", (33, 32), COLORS["red"])
    stripes.paste(Image.new("RGB", (11, 32), COLORS["green"]), (11, 0))
    stripes.paste(Image.new("RGB", (11, 32), COLORS["blue"]), (22, 0))
    stripes.save(images / "stripes.png")
    code = main(["predict", str(run_dir), str(images), "--json", "--threshold", "1.0"])
    assert code == 1  # one file could not be read
    data = json.loads(capsys.readouterr().out)
    assert data["labels"] == ["blue", "green", "red"]
    preds = {Path(p["source"]).name: p for p in data["predictions"]}
    assert preds["broken.png"]["error"] and preds["broken.png"]["top"] == []
    for p in data["predictions"]:
        if p["error"] is None:
            assert (p["label"] == "not sure") == (p["probability"] < 1.0)
            assert p["top"][0]["label"] in ("red", "green", "blue")
    assert preds["stripes.png"]["label"] == "not sure"  # three colours: never fully sure


def test_csv_and_gradcam(run_dir, images, tmp_path, capsys):
    out_csv = tmp_path / "preds.csv"
    cams = tmp_path / "cams"
    assert main(["predict", str(run_dir), str(images), "--csv", str(out_csv), "--gradcam", str(cams)]) == 0
    assert "wrote 2 rows" in capsys.readouterr().out
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert sorted(Path(r["path"]).name for r in rows) == ["green.jpg", "red.png"]
    assert {r["label"] for r in rows} == {"red", "green"}
    pngs = sorted(p.name for p in cams.iterdir())
    assert pngs == ["green_gradcam.png", "red_gradcam.png"]
    from PIL import Image

    assert Image.open(cams / "red_gradcam.png").size == (32, 32)


def test_errors_are_one_line(run_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlstudio predict: ") and "\n" not in err
    assert main(["predict", str(run_dir), str(tmp_path / "missing.png")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["predict", str(run_dir), str(tmp_path), "--top-k", "0"]) == 2
    assert "--top-k" in capsys.readouterr().err


def test_the_run_threshold_is_the_default_and_zero_turns_it_off(tmp_path_factory, tmp_path, capsys):
    from support.unsure_run import OTHER_COLOURS, unsure_run

    run = unsure_run(tmp_path_factory, tmp_path / "run")
    grey = write_image(tmp_path / "grey.png", OTHER_COLOURS["grey"])
    assert main(["predict", str(run), str(grey)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{grey}: not sure ")
    assert "not sure" in captured.err and "80%" in captured.err
    assert main(["predict", str(run), str(grey), "--threshold", "0"]) == 0
    assert "not sure" not in capsys.readouterr().out
