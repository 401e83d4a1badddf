"""Live training plots: loss and accuracy per epoch (training and validation) plus a smoothed batch curve.

Every curve is created once and then fed with ``setData`` on growing arrays. Batch events only
append to a buffer; a QTimer redraws the batch curves at most ``redraw_hz`` times a second, so a
fast trainer never waits on the plot.

The view ranges are set here rather than by pyqtgraph's auto-range: the x axis spans the run's
epoch budget from the start and the y axis only grows when a point falls outside it (and is
tightened once per epoch). Re-laying out the axes is the costly part of a redraw, and while
training the GUI thread has to win the GIL for every step of it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

# isort: split
# pyqtgraph after PySide6: it binds to the Qt module already imported.
import pyqtgraph as pg

from tlstudio.core.events import PHASE_FINE_TUNE, BatchEnded, EpochEnded, PhaseStarted

TRAIN_COLOUR = (31, 119, 180)
VAL_COLOUR = (255, 127, 14)
BATCH_COLOUR = (31, 119, 180, 110)


def legend_html() -> str:
    """The plots' key in words and colours: the batch curve, training and validation points."""

    def swatch(colour, mark: str) -> str:
        return f'<span style="color: rgb({colour[0]}, {colour[1]}, {colour[2]}); font-weight: bold;">{mark}</span>'

    return (f"{swatch(BATCH_COLOUR, '&#8212;')} batches (smoothed) &nbsp;&nbsp; "
            f"{swatch(TRAIN_COLOUR, '&#9679;')} training &nbsp;&nbsp; {swatch(VAL_COLOUR, '&#9679;')} validation")


def _x_span(x_max: float) -> tuple[float, float]:
    """The x range for a run of ``x_max`` epochs, with room for the last point's marker and tick label."""
    margin = max(0.25, 0.04 * x_max)
    return -margin, x_max + margin


class GrowingArray:
    """A float array that grows by appending, with amortised doubling (no copy per point)."""

    def __init__(self, capacity: int = 256) -> None:
        self._data = np.empty(capacity, dtype=float)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == len(self._data):
            bigger = np.empty(len(self._data) * 2, dtype=float)
            bigger[: self._n] = self._data
            self._data = bigger
        self._data[self._n] = value
        self._n += 1

    def clear(self) -> None:
        self._n = 0

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


class TrainingPlots(QWidget):
    """Two plots side by side: loss and accuracy against run epochs.

    Feed it the core events (``on_phase_started``, ``on_batch_ended``, ``on_epoch_ended``) from the
    GUI thread. The x axis counts epochs across the whole run, so the batch curve and the epoch
    points line up and a fine-tune phase continues where the head phase stopped.
    """

    def __init__(self, parent: QWidget | None = None, *, smoothing: float = 0.9, redraw_hz: float = 10.0) -> None:
        super().__init__(parent)
        self.smoothing = smoothing
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        layout = QHBoxLayout()
        outer.addLayout(layout, 1)
        # One key under both plots: a legend inside a plot 170 px wide at the smallest window was cut off.
        self.legend = QLabel(legend_html(), self)
        self.legend.setWordWrap(True)
        outer.addWidget(self.legend)
        self.loss_plot = self._make_plot("Loss", "loss")
        self.acc_plot = self._make_plot("Accuracy", "accuracy")
        for plot in (self.loss_plot, self.acc_plot):
            plot.disableAutoRange()
            plot.setXRange(*_x_span(1.0), padding=0)
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.loss_plot.setYRange(0.0, 1.0, padding=0.02)
        self._x_max = 1.0
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.acc_plot)

        def batch_curve(plot: pg.PlotWidget, name: str) -> pg.PlotDataItem:
            curve = plot.plot([], [], name=name, pen=pg.mkPen(BATCH_COLOUR, width=1))
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            return curve

        def epoch_curve(plot: pg.PlotWidget, name: str, colour, dashed: bool = False) -> pg.PlotDataItem:
            pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            return plot.plot([], [], name=name, pen=pen, symbol="o", symbolSize=6, symbolBrush=colour,
                             symbolPen=None)

        self.batch_loss_curve = batch_curve(self.loss_plot, "batches (smoothed)")
        self.batch_acc_curve = batch_curve(self.acc_plot, "batches (smoothed)")
        self.train_loss_curve = epoch_curve(self.loss_plot, "training", TRAIN_COLOUR)
        self.val_loss_curve = epoch_curve(self.loss_plot, "validation", VAL_COLOUR)
        self.train_acc_curve = epoch_curve(self.acc_plot, "training", TRAIN_COLOUR)
        self.val_acc_curve = epoch_curve(self.acc_plot, "validation", VAL_COLOUR)

        self._batch_x = GrowingArray()
        self._batch_loss = GrowingArray()
        self._batch_acc = GrowingArray()
        self._ema_loss: float | None = None
        self._ema_acc: float | None = None
        self._epoch_x = GrowingArray(64)
        self._loss = GrowingArray(64)
        self._val_loss = GrowingArray(64)
        self._acc = GrowingArray(64)
        self._val_acc = GrowingArray(64)
        self._phase_offset = 0  # run epochs completed before the current phase began
        self._epochs_done = 0
        self._markers: list[pg.InfiniteLine] = []
        self._dirty = False
        self.redraw_count = 0  # batch redraws done, for tests and benchmarks

        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / redraw_hz)))
        self._timer.timeout.connect(self._redraw_batches)

    def _make_plot(self, title: str, y_label: str) -> pg.PlotWidget:
        # Colours from the palette, so the plots read in light and dark themes alike.
        palette = self.palette()
        fg = palette.text().color()
        plot = pg.PlotWidget(background=palette.base().color())
        plot.setTitle(title, color=fg)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setPen(fg)
            plot.getAxis(axis).setTextPen(fg)
            plot.getAxis(axis).enableAutoSIPrefix(False)  # "loss (x0.001)" reads badly
        plot.setLabel("bottom", "epoch")
        plot.setLabel("left", y_label)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.getPlotItem().setDownsampling(auto=True, mode="peak")
        plot.getPlotItem().setClipToView(True)
        plot.setMinimumSize(170, 160)
        return plot

    # --- feeding -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every point (a new run starts)."""
        for arr in (self._batch_x, self._batch_loss, self._batch_acc, self._epoch_x, self._loss, self._val_loss,
                    self._acc, self._val_acc):
            arr.clear()
        self._ema_loss = self._ema_acc = None
        self._phase_offset = 0
        self._epochs_done = 0
        for plot in (self.loss_plot, self.acc_plot):
            for line in self._markers:
                if line in plot.getPlotItem().items:
                    plot.removeItem(line)
        self._markers.clear()
        for curve in (self.batch_loss_curve, self.batch_acc_curve, self.train_loss_curve, self.val_loss_curve,
                      self.train_acc_curve, self.val_acc_curve):
            curve.setData([], [])
        self._set_x_max(1.0)
        self.loss_plot.setYRange(0.0, 1.0, padding=0.02)
        self._dirty = False

    def set_epoch_budget(self, epochs: int) -> None:
        """Span the x axis over the run's planned epochs (it still grows if a run goes further)."""
        self._set_x_max(max(1.0, float(epochs)))

    def _set_x_max(self, x_max: float) -> None:
        if x_max != self._x_max:
            self._x_max = x_max
            for plot in (self.loss_plot, self.acc_plot):
                plot.setXRange(*_x_span(x_max), padding=0)

    def _fit_loss_range(self, tighten: bool = False) -> None:
        values = [a.view() for a in (self._batch_loss, self._loss, self._val_loss) if len(a)]
        if not values:
            return
        data = np.concatenate(values)
        data = data[np.isfinite(data)]
        if not len(data):
            return
        lo, hi = float(data.min()), float(data.max())
        cur_lo, cur_hi = self.loss_plot.getViewBox().viewRange()[1]
        if tighten or lo < cur_lo or hi > cur_hi:
            pad = 0.08 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 0.1)
            self.loss_plot.setYRange(max(0.0, lo - pad), hi + pad, padding=0)

    def on_phase_started(self, event: PhaseStarted) -> None:
        if event.epochs <= 0:
            return  # caching / evaluating are not epoch-based
        self._phase_offset = self._epochs_done
        if event.phase == PHASE_FINE_TUNE and self._epochs_done > 0:
            for plot in (self.loss_plot, self.acc_plot):
                line = pg.InfiniteLine(pos=self._epochs_done, angle=90, movable=False,
                                       pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DotLine),
                                       label="fine-tuning", labelOpts={"position": 0.5, "color": (90, 90, 90),
                                                                        "fill": (255, 255, 255, 180)})
                plot.addItem(line)
                self._markers.append(line)

    def on_batch_ended(self, event: BatchEnded) -> None:
        steps = max(1, event.steps)
        x = self._phase_offset + event.epoch + (event.batch + 1) / steps
        a = self.smoothing
        self._ema_loss = event.loss if self._ema_loss is None else a * self._ema_loss + (1 - a) * event.loss
        self._ema_acc = event.accuracy if self._ema_acc is None else a * self._ema_acc + (1 - a) * event.accuracy
        if x > self._x_max:
            self._set_x_max(float(np.ceil(x)))
        self._batch_x.append(x)
        self._batch_loss.append(self._ema_loss)
        self._batch_acc.append(self._ema_acc)
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def on_epoch_ended(self, event: EpochEnded) -> None:
        self._epochs_done = event.run_epoch
        self._epoch_x.append(event.run_epoch)
        self._loss.append(event.loss)
        self._acc.append(event.accuracy)
        self._val_loss.append(_nan(event.val_loss))
        self._val_acc.append(_nan(event.val_accuracy))
        x = self._epoch_x.view()
        self.train_loss_curve.setData(x, self._loss.view())
        self.train_acc_curve.setData(x, self._acc.view())
        self.val_loss_curve.setData(x, self._val_loss.view(), connect="finite")
        self.val_acc_curve.setData(x, self._val_acc.view(), connect="finite")
        if event.run_epoch > self._x_max:
            self._set_x_max(float(event.run_epoch))
        self._redraw_batches()
        self._fit_loss_range(tighten=True)

    def flush(self) -> None:
        """Draw whatever is pending now and stop the redraw timer (the run ended)."""
        self._redraw_batches()
        self._timer.stop()
        # The run is over: show the epochs it really ran (early stopping may have ended it sooner).
        done = max([self._epochs_done, *(self._batch_x.view()[-1:].tolist())], default=0.0)
        if done > 0:
            self._set_x_max(float(np.ceil(done)))
        self._fit_loss_range(tighten=True)

    def _redraw_batches(self) -> None:
        if not self._dirty:
            self._timer.stop()  # idle: restart on the next batch
            return
        self._dirty = False
        x = self._batch_x.view()
        self.batch_loss_curve.setData(x, self._batch_loss.view())
        self.batch_acc_curve.setData(x, self._batch_acc.view())
        self._fit_loss_range()
        self.redraw_count += 1

    def show_history(self, epochs: list[dict]) -> None:
        """Draw a finished run's epochs (``history.json``'s ``"epochs"``), e.g. after reopening a project."""
        from tlstudio.core.events import EpochEnded

        self.clear()
        for i, e in enumerate(epochs):
            try:
                event = EpochEnded(phase=str(e.get("phase", "")), epoch=int(e.get("epoch", i)),
                                   epochs=int(e.get("epochs", 0) or 0), run_epoch=int(e.get("run_epoch", i + 1)),
                                   loss=float(e["loss"]), accuracy=float(e["accuracy"]),
                                   val_loss=e.get("val_loss"), val_accuracy=e.get("val_accuracy"),
                                   seconds=float(e.get("seconds", 0.0) or 0.0))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged record: draw the others
            self.on_epoch_ended(event)
        self.flush()

    # --- reading back (tests, screenshots) --------------------------------------------------
    def epoch_count(self) -> int:
        return len(self._epoch_x)

    def batch_count(self) -> int:
        return len(self._batch_x)
