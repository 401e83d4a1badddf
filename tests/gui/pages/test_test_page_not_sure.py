"""The Test page says "Not sure" under the run's threshold, with the best guess, and the threshold can be moved."""

from __future__ import annotations

import gc
import os

import pytest
from support.predict_run import COLORS, write_image
from support.trained_runs import record_for
from support.unsure_run import OTHER_COLOURS, unsure_run

SHOTS = os.environ.get("TLSTUDIO_SCREENSHOTS")  # a folder: save grabs of the page there to look at


@pytest.fixture
def page(qtbot, tmp_path_factory):
    from tlstudio.gui.pages.test_export import TestPage
    from tlstudio.gui.state import AppState

    state = AppState()
    state.add_run(record_for(unsure_run(tmp_path_factory, tmp_path_factory.mktemp("unsure") / "run"), name="colours"))
    page = TestPage(state)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    yield page
    page.shutdown()
    assert not page.is_busy()
    qtbot.wait(20)
    gc.collect()


def test_another_class_reads_not_sure_with_its_best_guess_and_the_threshold_is_adjustable(qtbot, page, tmp_path):
    grey = write_image(tmp_path / "grey.png", OTHER_COLOURS["grey"])
    red = write_image(tmp_path / "red.png", COLORS["red"])
    page.add_images([grey, red])
    cards = page.card_list()
    qtbot.waitUntil(lambda: all(c.prediction is not None for c in cards), timeout=60000)
    assert page.not_sure.value() == pytest.approx(0.8)  # the run's own threshold is the default
    grey_card, red_card = cards
    assert grey_card.is_not_sure() and not red_card.is_not_sure()
    text = grey_card.status_label.text()
    assert text.startswith("Not sure. Best guess: ") and grey_card.top_labels()[0][0] in text
    assert grey_card.status_label.isVisible() and not red_card.status_label.isVisible()
    if SHOTS:
        page.grab().save(os.path.join(SHOTS, "test_page_not_sure.png"))

    page.not_sure.spin.setValue(0)  # "off": every card names its best class
    assert not grey_card.is_not_sure() and not grey_card.status_label.isVisible()
    page.not_sure.spin.setValue(30)  # grey gives each of the three classes a third: above 30 %, an answer
    assert not grey_card.is_not_sure()
    page.not_sure.spin.setValue(50)
    assert grey_card.is_not_sure() and grey_card.status_label.isVisible()


def test_folder_tables_follow_the_threshold_without_predicting_again(qtbot, page, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    for name, colour in (("grey", OTHER_COLOURS["grey"]), ("yellow", OTHER_COLOURS["yellow"]), ("red", COLORS["red"])):
        write_image(folder / f"{name}.png", colour)
    page.add_paths([folder])
    table = page.folder_list()[0]
    qtbot.waitUntil(lambda: table.finished, timeout=60000)
    assert page.not_sure.value() == pytest.approx(0.8)

    def labels():
        return {row[0]: (row[1], row[3]) for row in table.rows()}

    def csv_labels():
        return {line.split(",")[0].rsplit("/", 1)[-1]: line.split(",")[1] for line in table.csv_text().splitlines()[1:]}

    got = labels()  # grey: a third each; yellow: about two thirds red; red: sure
    assert got["grey.png"][0] == "not sure" and got["grey.png"][1].startswith("Best guess: ")
    assert got["yellow.png"][0] == "not sure" and got["red.png"][0] == "red"
    # Moving the threshold relabels the rows and the CSV from the probabilities already there.
    monkeypatch.setattr(page._worker, "submit_folder", lambda *a, **k: pytest.fail("predicted again"))
    probabilities = [row[2] for row in table.rows()]
    page.not_sure.spin.setValue(50)
    assert labels()["yellow.png"][0] == "red" and labels()["grey.png"][0] == "not sure"
    assert csv_labels()["yellow.png"] == "red" and csv_labels()["grey.png"] == "not sure"
    page.not_sure.spin.setValue(0)  # "off": every row names its best class
    assert all(label != "not sure" for label, _note in labels().values())
    assert not labels()["grey.png"][1].startswith("Best guess")
    assert "not sure" not in csv_labels().values()
    assert [row[2] for row in table.rows()] == probabilities
    # A folder added later starts from the threshold shown.
    page.not_sure.spin.setValue(90)
    monkeypatch.undo()
    page.add_paths([folder])
    second = page.folder_list()[1]
    qtbot.waitUntil(lambda: second.finished, timeout=60000)
    assert {row[0]: row[1] for row in second.rows()}["yellow.png"] == "not sure"
