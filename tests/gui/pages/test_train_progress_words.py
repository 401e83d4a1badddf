"""The Train page never promises every epoch of a cap that early stopping will cut short."""

from __future__ import annotations

from tlstudio.core import events as ev
from tlstudio.gui.pages.train import TrainPage
from tlstudio.gui.state import AppState


def _page(qtbot, early_stopping: bool) -> TrainPage:
    state = AppState()
    state.update_train_config(early_stopping=early_stopping)
    page = TrainPage(state)
    qtbot.addWidget(page)
    return page


def test_a_phase_that_stops_early_says_until_it_stops_improving(qtbot):
    page = _page(qtbot, early_stopping=True)
    page._on_phase_started(ev.PhaseStarted(phase=ev.PHASE_HEAD, epochs=300, steps_per_epoch=4))
    assert page.progress.format() == "Training the classifier: until it stops improving (at most 300 epochs)"
    assert page.progress.maximum() == 0  # busy, not a bar towards epoch 300
    page._paint_progress(ev.BatchEnded(ev.PHASE_HEAD, epoch=2, batch=3, steps=4, loss=0.5, accuracy=0.8,
                                       global_step=12), now=1e9)
    text = page.status_label.text()
    assert "epoch 3 (until it stops improving, at most 300)" in text and "left" not in text


def test_a_phase_without_early_stopping_counts_towards_its_last_epoch(qtbot):
    page = _page(qtbot, early_stopping=False)
    page._on_phase_started(ev.PhaseStarted(phase=ev.PHASE_HEAD, epochs=5, steps_per_epoch=4))
    assert page.progress.maximum() == 20 and page.progress.format().endswith("%p%")
    page._paint_progress(ev.BatchEnded(ev.PHASE_HEAD, epoch=1, batch=0, steps=4, loss=0.5, accuracy=0.8,
                                       global_step=5), now=1e9)
    assert "epoch 2/5" in page.status_label.text()
