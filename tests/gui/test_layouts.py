"""Every page at the smallest window, 1024x700 and 1920x1080: nothing drawn over anything, no text cut off,
and no jargon in what a person reads (technical words live in tooltips)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QTabBar, QTableWidget, QWidget
from support.trained_runs import record_for, trained_runs  # noqa: F401

from tlstudio.gui import layout_check
from tlstudio.gui.main_window import PAGES

JARGON = re.compile(r"\b(head|BN|Functional|alpha)\b|α", re.IGNORECASE)


@pytest.fixture
def full_window(qtbot, main_window, trained_runs):  # noqa: F811
    """A window with a scanned dataset and two runs, so every page has something to lay out."""
    main_window.open_dataset(trained_runs.data)
    qtbot.waitUntil(lambda: main_window.state.scan is not None, timeout=15000)
    for i, run in enumerate(trained_runs.runs):
        main_window.state.add_run(record_for(run, name=f"run {i + 1}"))
    main_window.page("model").auto_build = False
    return main_window


def visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(kind, text) of everything a person reads without hovering."""
    out = []
    for w in root.findChildren(QWidget):
        if not w.isVisible():
            continue
        if isinstance(w, QLabel | QAbstractButton):
            out.append((type(w).__name__, w.text()))
        elif isinstance(w, QGroupBox):
            out.append(("QGroupBox", w.title()))
        elif isinstance(w, QTabBar):
            out += [("tab", w.tabText(i)) for i in range(w.count())]
        elif isinstance(w, QTableWidget):
            out += [("column", w.horizontalHeaderItem(c).text()) for c in range(w.columnCount())
                    if w.horizontalHeaderItem(c) is not None]
    return out


def sizes(window) -> list[tuple[int, int]]:
    smallest = (window.minimumSize().width(), window.minimumSize().height())
    return list(dict.fromkeys([smallest, *layout_check.SIZES]))


def test_every_page_fits_every_size(qtbot, full_window):
    found = {}
    for size in sizes(full_window):
        full_window.resize(*size)
        for key in PAGES:
            full_window.go_to(key)
            qtbot.wait(30)
            problems = layout_check.problems(full_window)
            if problems:
                found[f"{key} at {size[0]}x{size[1]}"] = problems
    assert found == {}


def test_no_jargon_in_what_a_person_reads(qtbot, full_window):
    bad = []
    for key in PAGES:
        full_window.go_to(key)
        qtbot.wait(20)
        bad += [(key, kind, text) for kind, text in visible_texts(full_window) if JARGON.search(text)]
    menus = [a.text() for m in full_window.menuBar().actions() for a in m.menu().actions()]
    bad += [("menu", "action", t) for t in menus if JARGON.search(t)]
    assert bad == []


def test_the_checker_finds_overlaps_and_cut_text(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    a, b = QLabel("a fairly long text that cannot fit", host), QLabel("b", host)
    a.setGeometry(0, 0, 40, 20)
    b.setGeometry(20, 5, 40, 20)
    host.resize(200, 100)
    host.show()
    problems = layout_check.problems(host)
    assert any("over" in p for p in problems) and any("needs" in p for p in problems)


def test_a_padded_wrapped_label_is_measured_whole(qtbot):
    # heightForWidth counts the padding: a banner given exactly that height fits; one line less does not.
    host = QWidget()
    qtbot.addWidget(host)
    banner = QLabel("a warning long enough to wrap onto a second and a third line in this box", host)
    banner.setWordWrap(True)
    banner.setStyleSheet("QLabel { border: 2px solid orange; padding: 8px; }")
    host.resize(400, 200)
    host.show()
    banner.setGeometry(0, 0, 160, banner.heightForWidth(160))
    assert layout_check.cut_labels(host) == []
    banner.setGeometry(0, 0, 160, banner.heightForWidth(160) - banner.fontMetrics().lineSpacing())
    assert layout_check.cut_labels(host) != []


def test_an_error_banner_keeps_the_model_page_in_shape(qtbot, full_window, tmp_path):
    full_window.resize(1024, 700)
    page = full_window.go_to("model")
    full_window.state.update_train_config(weights=str(tmp_path / "missing.h5"))
    page.build_model()  # refused before any work: the weights file is not there
    qtbot.waitUntil(lambda: page.error_banner.isVisible(), timeout=5000)
    qtbot.wait(30)
    assert "missing.h5" in " ".join(page.error_banner.messages)
    assert layout_check.problems(full_window) == []
    assert page.layers.totals.text() == ""  # no numbers of a model that is not there


def test_the_train_page_fits_with_resume_shown(qtbot, full_window):
    """An interrupted last run adds the Resume button to the Train page's button row."""
    from dataclasses import replace

    state = full_window.state
    last = state.project.runs[-1]
    state.project.runs[-1] = replace(last, status="interrupted", epochs_run=2)
    state.set_project(state.project, state.project_path)
    page = full_window.go_to("train")
    assert page.resume_button.isVisibleTo(page)
    for size in sizes(full_window):
        full_window.resize(*size)
        qtbot.wait(30)
        assert layout_check.problems(full_window) == [], size
