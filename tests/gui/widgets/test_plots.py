"""TrainingPlots: curves fed by core events, batch redraws throttled by a timer."""

from __future__ import annotations

import numpy as np

from tlstudio.core import events as ev
from tlstudio.gui.widgets.plots import TrainingPlots


def test_epochs_and_batches_line_up_across_phases(qtbot):
    plots = TrainingPlots(redraw_hz=10)
    qtbot.addWidget(plots)
    plots.set_epoch_budget(3)
    assert plots.acc_plot.getViewBox().viewRange()[0][1] >= 3  # the whole run's span from the start
    run_epoch = 0
    for phase, epochs in ((ev.PHASE_HEAD, 2), (ev.PHASE_FINE_TUNE, 1)):
        plots.on_phase_started(ev.PhaseStarted(phase=phase, epochs=epochs, steps_per_epoch=4))
        for e in range(epochs):
            for b in range(4):
                plots.on_batch_ended(ev.BatchEnded(phase=phase, epoch=e, batch=b, steps=4, loss=1.0 / (b + 1),
                                                   accuracy=0.5, global_step=run_epoch * 4 + b + 1))
            run_epoch += 1
            plots.on_epoch_ended(ev.EpochEnded(phase=phase, epoch=e, epochs=epochs, run_epoch=run_epoch,
                                               loss=0.5, accuracy=0.8, val_loss=None if run_epoch == 1 else 0.4,
                                               val_accuracy=None if run_epoch == 1 else 0.9, seconds=1.0))
    plots.flush()
    x, y = plots.batch_loss_curve.getData()
    assert len(x) == 12 and x[-1] == 3.0 and x[0] == 0.25
    assert np.all(np.diff(x) > 0)  # fine-tune batches continue after the head epochs
    assert y[0] == 1.0 and 0.25 < y[-1] < 1.0  # smoothed, not raw
    ex, ey = plots.train_acc_curve.getData()
    assert list(ex) == [1.0, 2.0, 3.0] and list(ey) == [0.8, 0.8, 0.8]
    _, vy = plots.val_loss_curve.getData()
    assert np.isnan(vy[0]) and list(vy[1:]) == [0.4, 0.4]
    assert len(plots._markers) == 2 and plots._markers[0].value() == 2
    lo, hi = plots.loss_plot.getViewBox().viewRange()[1]
    assert lo <= min(y.min(), 0.4) and hi >= 1.0  # the loss axis holds every point
    # Many batches, few redraws: drawing is throttled, the data is all there.
    assert plots.redraw_count <= 4
    plots.clear()
    data = plots.train_loss_curve.getData()[0]
    assert plots.batch_count() == 0 and plots.epoch_count() == 0 and (data is None or len(data) == 0)
    assert not plots._markers
