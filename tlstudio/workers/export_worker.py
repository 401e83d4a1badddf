"""Exports a model to several formats off the GUI thread, through core's one export loop.

:func:`tlstudio.core.deploy.export.export_models` does the work in the engine process, as it does for the CLI: a format that
fails (a missing optional package, a converter that refuses the model) is reported with its one-line
reason and the others still go ahead; Cancel stops between steps and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal

from tlstudio.engine.protocol import ExportSummary, FormatOutcome
from tlstudio.workers.base import Worker

PROGRESS_SCALE = 1000


class ExportWorker(Worker):
    """Export ``source`` (a run folder or model file) into ``destination`` in each of ``formats``.

    Signals (besides :class:`~tlstudio.workers.base.Worker`'s): ``format_started(str)`` and
    ``format_done(object)`` (a :class:`FormatOutcome`). ``progress`` runs from 0 to
    :data:`PROGRESS_SCALE` over all formats; ``finished`` carries an :class:`ExportSummary`.
    """

    format_started = Signal(str)
    format_done = Signal(object)

    def __init__(self, source: str | Path, formats: list[str], destination: str | Path, *, verify: bool = True) -> None:
        super().__init__()
        self.source = str(source)
        self.formats = list(formats)
        self.destination = Path(destination)
        self.verify = verify

    def work(self) -> ExportSummary:
        # The export runs in the engine process, through core's one export loop (export_models).
        from tlstudio.engine import protocol as p
        from tlstudio.workers.engine_calls import request

        n = len(self.formats)
        position = {fmt: i for i, fmt in enumerate(self.formats)}
        current = {"fmt": ""}

        def on_event(event) -> None:
            if isinstance(event, p.FormatStarted):
                current["fmt"] = event.fmt
                self.format_started.emit(event.fmt)
                self.message.emit(f"Exporting {event.fmt} ({position.get(event.fmt, 0) + 1} of {n})…")

        def status(text: str) -> None:
            fmt = current["fmt"]
            self.message.emit(f"{fmt} ({position.get(fmt, 0) + 1} of {n}): {text}…" if fmt else f"{text}…")

        def progress(done: int, total: int) -> None:
            self.report(round(PROGRESS_SCALE * done / total) if total else 0, PROGRESS_SCALE)

        self.report(0, PROGRESS_SCALE)
        summary = request(p.Export(self.source, tuple(self.formats), str(self.destination), verify=self.verify),
                          progress=progress, cancel=self.cancel_event, message=status, on_event=on_event)
        outcomes = []
        for result in summary.outcomes:
            outcome = FormatOutcome(result.fmt, result.files, result.verification, error=result.error,
                                    missing_dependency=result.missing_dependency, notes=result.notes)
            outcomes.append(outcome)
            self.format_done.emit(outcome)
        return ExportSummary(str(self.destination), tuple(outcomes))
