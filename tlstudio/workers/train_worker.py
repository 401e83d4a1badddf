"""The training worker: asks the engine to run core ``train()`` (in the engine's training child process,
so TensorFlow never loads in the window's process) from a QThread, and forwards each core event as a Qt signal.

Each signal carries the frozen event dataclass itself (``BatchEnded``, ``EpochEnded``...), so the
GUI reads the same fields the CLI prints. ``event`` is emitted for every event as well, for a log.
Cancel (:meth:`request_cancel`) sets the event that core checks after every batch: the run stops
within a batch, keeps its best weights and still finishes with ``TrainFinished(status="cancelled")``.
``request_stop("quit")`` (the window is closing) stops it as promptly but leaves it "interrupted" at its
last completed epoch, to be resumed: no evaluation, nothing else written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.workers.base import Worker


class TrainWorker(Worker):
    """Runs one training run; construct, then :func:`~tlstudio.workers.base.start_worker`.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (a copy: the worker never sees later edits).
    run_dir : str or Path
        A fresh folder for the run.
    scan : DatasetScan, optional
        The dataset scan the app already holds, so core need not scan again.

    Signals
    -------
    run_started, phase_started, cache_progress, batch_ended, epoch_ended, file_skipped, log_message : object
        One per core progress event type, carrying the event.
    event : object
        Every event, whatever its type (``TrainFinished`` and ``TrainFailed`` arrive here only).
    finished / failed / cancelled
        Exactly one, as for every worker: ``finished`` carries the
        :class:`~tlstudio.core.train.trainer.TrainResult`, also for a cancelled run that kept weights.
    interrupted : str
        Just before ``failed`` when the engine process died during the run, or before ``cancelled``
        when the run was stopped to quit: the run folder, which can be resumed from its last
        checkpoint (``TrainWorker(None, run_dir, resume=True)``).
    """

    run_started = Signal(object)
    phase_started = Signal(object)
    cache_progress = Signal(object)
    batch_ended = Signal(object)
    epoch_ended = Signal(object)
    file_skipped = Signal(object)
    log_message = Signal(object)
    event = Signal(object)
    interrupted = Signal(str)

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, scan: Any = None, resume: bool = False,
                 cluster: str = "") -> None:
        super().__init__()
        self.cancel_event = ev.StopRequest()  # says why it was set: a plain cancel or quitting
        self.config = config
        self.run_dir = Path(run_dir)
        self.scan = scan
        self.resume = resume
        self.cluster = cluster
        self.result: Any = None
        self._by_type = {
            ev.RunStarted: self.run_started,
            ev.PhaseStarted: self.phase_started,
            ev.CacheProgress: self.cache_progress,
            ev.BatchEnded: self.batch_ended,
            ev.EpochEnded: self.epoch_ended,
            ev.FileSkipped: self.file_skipped,
            ev.LogMessage: self.log_message,
        }

    def request_stop(self, reason: str = ev.STOP_USER) -> None:
        """Stop the run within a batch; ``ev.STOP_QUIT`` leaves it "interrupted" (safe from any thread)."""
        self.cancel_event.stop(reason)

    def emit_event(self, event: ev.Event) -> None:
        """The ``emit`` callable handed to core: called in the worker thread, queued to the GUI."""
        signal = self._by_type.get(type(event))
        if signal is not None:
            signal.emit(event)
        self.event.emit(event)
        if isinstance(event, ev.CacheProgress):
            self.progress.emit(event.done, event.total)

    def work(self) -> Any:
        from tlstudio.core.errors import Interrupted
        from tlstudio.engine import protocol as p
        from tlstudio.engine.client import EngineDied
        from tlstudio.workers.engine_calls import request

        # A Cancelled raised by core (stopped before any weights were worth keeping) reaches
        # Worker.run and becomes the ``cancelled`` signal.
        try:
            result = request(p.Train(self.config, str(self.run_dir), self.scan, self.resume, self.cluster),
                             cancel=self.cancel_event, on_event=self.emit_event)
        except EngineDied:
            self.interrupted.emit(str(self.run_dir))
            raise
        except Interrupted:  # stopped to quit; a run stopped before its first epoch left no folder
            if self.run_dir.is_dir():
                self.interrupted.emit(str(self.run_dir))
            raise
        self.result = result
        return result
