"""Predicting folders: a row per file, bad files with their reason, cancel, CSV cells safe for spreadsheets."""

from __future__ import annotations

import csv
import threading

import pytest
from support.predict_run import COLORS, trained_run, write_image

from tlstudio.core.deploy.batch import collect_files, csv_cell, csv_row, predict_folder_to_csv
from tlstudio.core.deploy.predict import Prediction, Predictor
from tlstudio.core.errors import Cancelled, TlstudioError


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_path(trained_run(tmp_path_factory))


def test_folder_to_csv_has_a_row_per_file_including_bad_ones(predictor, tmp_path):
    folder = tmp_path / "imgs"
    write_image(folder / "a" / "red1.png", COLORS["red"])
    write_image(folder / "a" / "deeper" / "blue1.jpg", COLORS["blue"])
    write_image(folder / "green1.bmp", COLORS["green"], fmt="BMP")
    (folder / "notes.txt").write_text("hello")
    (folder / "a" / "cut.png").write_bytes(write_image(tmp_path / "full.png", COLORS["red"]).read_bytes()[:60])
    (folder / ".hidden.png").write_bytes(b"x")
    seen = []
    out = tmp_path / "out" / "preds.csv"
    preds = predict_folder_to_csv(predictor, folder, out, top_k=2, progress=lambda d, t: seen.append((d, t)))
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["path", "label", "probability", "top_k", "error"]
    body = {row[0].replace("\\", "/").split("imgs/")[1]: row for row in rows[1:]}
    assert set(body) == {"a/red1.png", "a/deeper/blue1.jpg", "green1.bmp", "notes.txt", "a/cut.png"}
    assert len(preds) == 5
    assert body["a/red1.png"][1] == "red" and body["a/deeper/blue1.jpg"][1] == "blue"
    assert body["green1.bmp"][1] == "green"
    assert body["a/red1.png"][3].count(":") == 2 and ";" in body["a/red1.png"][3]
    assert float(body["a/red1.png"][2]) > 0.5
    for name in ("notes.txt", "a/cut.png"):
        assert body[name][1] == "" and body[name][4]
    assert "truncated" in body["a/cut.png"][4] or "corrupt" in body["a/cut.png"][4]
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)


def test_folder_prediction_can_be_cancelled(predictor, tmp_path):
    folder = tmp_path / "imgs"
    write_image(folder / "r.png", COLORS["red"])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        predict_folder_to_csv(predictor, folder, tmp_path / "x.csv", cancel=cancel)
    assert not (tmp_path / "x.csv").exists()


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(TlstudioError, match="no such file or folder"):
        collect_files([tmp_path / "nope"])


def test_cells_that_a_spreadsheet_would_run_are_escaped(predictor, tmp_path, monkeypatch):
    assert [csv_cell(t) for t in ("=1+1", "+x", "-x", "@SUM(A1)", "\tx", "plain", "")] == [
        "'=1+1", "'+x", "'-x", "'@SUM(A1)", "'\tx", "plain", ""]
    assert csv_row(Prediction("=HYPERLINK(1)", [("@cls", 0.9)], "@cls", 0.9)) == [
        "'=HYPERLINK(1)", "'@cls", "0.9000", "'@cls:0.9000", ""]
    write_image(tmp_path / "=cmd.png", COLORS["red"])
    monkeypatch.chdir(tmp_path)  # a relative path keeps the name at the start of the cell
    predict_folder_to_csv(predictor, ["=cmd.png"], tmp_path / "preds.csv")
    rows = list(csv.reader((tmp_path / "preds.csv").open(encoding="utf-8")))
    assert rows[1][0] == "'=cmd.png" and rows[1][1] == "red"
