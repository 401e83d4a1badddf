"""The Test page: dropped images become cards with the model's real top-k, folders become tables."""

from __future__ import annotations

import csv
import gc
import os
from pathlib import Path

import pytest
from support.qt_events import accepted_as_copy, drop
from support.trained_runs import CLASSES, COLOURS, record_for, reference_predictor, trained_runs  # noqa: F401

SHOTS = os.environ.get("TLSTUDIO_SCREENSHOTS")  # a folder: save grabs of the page there to look at


def _drop(page, *paths):
    event = drop(page, *paths)
    assert accepted_as_copy(event)


@pytest.fixture
def page(qtbot, trained_runs):  # noqa: F811
    from tlstudio.gui.pages.test_export import TestPage
    from tlstudio.gui.state import AppState

    state = AppState()
    for i, run in enumerate(trained_runs.runs):
        state.add_run(record_for(run, name=f"run {i + 1}"))
    page = TestPage(state)
    qtbot.addWidget(page)
    page.resize(1000, 860)
    page.show()
    yield page
    page.shutdown()
    assert not page.is_busy()
    qtbot.wait(20)
    gc.collect()  # here, in the GUI thread, rather than inside the next test's worker thread


def test_dropping_images_and_a_folder_gives_cards_with_the_real_top_k_and_a_table(qtbot, page, trained_runs):  # noqa: F811
    run = str(trained_runs.runs[-1])
    assert page.model_source() == run, "the latest run is tested by default"
    images = [trained_runs.loose / "red_new.png", trained_runs.loose / "blue_new.png"]
    _drop(page, *images, trained_runs.loose)

    cards = page.card_list()
    assert [c.title for c in cards] == ["red_new.png", "blue_new.png"]
    assert "model" in cards[0].status_label.text().lower()  # says it waits for the model to load
    assert len(page.folder_list()) == 1
    qtbot.waitUntil(lambda: all(c.prediction is not None for c in cards), timeout=60000)
    table = page.folder_list()[0]
    qtbot.waitUntil(lambda: table.finished, timeout=60000)
    assert "Model ready" in page.model_status.text()

    expected = reference_predictor(run).predict([str(p) for p in images], top_k=3)
    assert [c.top_labels()[0][0] for c in cards] == ["red", "blue"]  # the run learned the colours
    for card, want in zip(cards, expected, strict=True):
        got = card.top_labels()
        assert [name for name, _p in got] == [name for name, _p in want.top]
        assert [p for _n, p in got] == pytest.approx([p for _n, p in want.top], abs=1e-5)
        assert card.image_label.pixmap() is not None and not card.image_label.pixmap().isNull()

    rows = table.rows()
    files = sorted(p.name for p in trained_runs.loose.iterdir())
    assert sorted(r[0] for r in rows) == files  # one row per file, the broken one included
    broken = next(r for r in rows if r[0] == "broken.jpg")
    assert broken[1] == "—" and "not an image" in broken[3]
    good = {r[0]: r for r in rows if r[0] != "broken.jpg"}
    folder_expected = reference_predictor(run).predict([str(trained_runs.loose / f) for f in good], top_k=3)
    for (name, row), want in zip(good.items(), folder_expected, strict=True):
        assert row[1] == want.label and row[2] == f"{want.probability:.1%}", name

    # Sorting by probability puts the unreadable file last when descending.
    from PySide6.QtCore import Qt

    table.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    assert table.rows()[-1][0] == "broken.jpg"

    # Grad-CAM on every card: each gets an overlay that differs from its thumbnail.
    before = cards[0].image_label.pixmap().toImage()
    page.gradcam_all.setChecked(True)
    qtbot.waitUntil(lambda: all(c.showing_gradcam() for c in cards), timeout=60000)
    assert cards[0].image_label.pixmap().toImage() != before
    assert cards[0].gradcam_box.text().startswith("Grad-CAM (")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.grab().save(str(Path(SHOTS) / "test_page.png"))


def test_save_csv_and_a_bad_dropped_file(qtbot, page, trained_runs, dialogs, tmp_path):  # noqa: F811
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    _drop(page, bad, trained_runs.loose)
    card = page.card_list()[0]
    table = page.folder_list()[0]
    qtbot.waitUntil(lambda: card.error is not None and table.finished, timeout=60000)
    assert "notes.png" in card.status_label.text() and not card.gradcam_box.isEnabled()
    assert card.top_labels() == []

    out = tmp_path / "predictions.csv"
    dialogs.files.append(str(out))
    table.save_csv_dialog()
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(list(trained_runs.loose.iterdir()))
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["broken.jpg"]["error"] and not by_name["broken.jpg"]["label"]
    assert by_name["red_new.png"]["label"] in CLASSES and float(by_name["red_new.png"]["probability"]) > 0


def test_paste_an_image_and_choose_the_model(qtbot, page, trained_runs):  # noqa: F811
    from PySide6.QtGui import QColor, QGuiApplication, QImage

    state = page.state
    first = str(trained_runs.runs[0])
    state.set_current_run(first)
    assert page.model_source() == first
    image = QImage(40, 30, QImage.Format.Format_RGB888)
    image.fill(QColor(*COLOURS["green"]))
    QGuiApplication.clipboard().setImage(image)
    page.paste()
    cards = page.card_list()
    assert len(cards) == 1 and cards[0].title == "Pasted image"
    qtbot.waitUntil(lambda: cards[0].prediction is not None, timeout=60000)
    assert cards[0].error is None and len(cards[0].top_labels()) == 3
    assert {name for name, _p in cards[0].top_labels()} == set(CLASSES)
    assert cards[0].top_labels()[0][0] == "green"

    # A model file opened from File > Open model is offered and selected.
    model_file = trained_runs.runs[1] / "model.keras"
    state.set_opened_model(model_file)
    assert page.model_source() == str(model_file)
    # Dropping a model file onto the page chooses it as the model to test.
    page.set_model_source(first)
    assert page.model_source() == first
    _drop(page, model_file)
    assert page.model_source() == str(model_file) and state.opened_model == str(model_file)
    assert len(page.card_list()) == 1
    page.clear()
    assert page.card_list() == [] and page.hint.isVisible()


def test_export_button_opens_the_dialog_for_the_chosen_model(qtbot, page, trained_runs):  # noqa: F811
    dialog = page.open_export_dialog()
    assert dialog.source() == page.model_source() == str(trained_runs.runs[-1])
    dialog.close()


def test_cards_follow_the_chosen_model_and_the_side_bar_names_it(qtbot, page, trained_runs):  # noqa: F811
    first, latest = (str(r) for r in trained_runs.runs)
    assert page.model_source() == latest and page.state.tested_model == latest
    _drop(page, trained_runs.loose / "green_new.png")
    card = page.card_list()[0]
    qtbot.waitUntil(lambda: card.prediction is not None, timeout=60000)
    assert card.model_label.text() == "Model: run 2"
    latest_answer = card.top_labels()

    page.set_model_source(first)  # another model: the card is asked again, never left showing run 2's answer
    assert page.state.tested_model == first
    assert card.model_label.text() == "Model: run 1"
    qtbot.waitUntil(lambda: card.prediction is not None, timeout=60000)
    want = reference_predictor(first).predict([str(trained_runs.loose / "green_new.png")], top_k=3)[0]
    assert [n for n, _p in card.top_labels()] == [n for n, _p in want.top]
    assert card.top_labels() != latest_answer or first == latest

    from tlstudio.gui.step_status import step_statuses

    assert step_statuses(page.state)["test"] == ("ready", "run 1")
    # Two quick switches: the answer of the model chosen in between never lands on the card.
    page.set_model_source(latest)
    page.set_model_source(first)
    page.set_model_source(latest)
    qtbot.waitUntil(lambda: card.prediction is not None, timeout=60000)
    qtbot.wait(300)  # anything still queued from the other model arrives now
    assert card.model_label.text() == "Model: run 2" and card.top_labels() == latest_answer
