"""Exports a model to several formats, one after the other, off the GUI thread.

Each format is exported by :func:`tlstudio.core.deploy.export.export_model`. A format that fails (a missing
optional package, a converter that refuses the model) is recorded with its one-line reason and the
others still go ahead; Cancel stops between formats and inside a conversion where core checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal

from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.workers.base import Worker

PROGRESS_SCALE = 1000


@dataclass(frozen=True)
class FormatOutcome:
    """What one format produced.

    ``files``: ((path, size in bytes), ...); ``verification``: core's dict ({"top1_agreement",
    "max_prob_diff", "n", "ok"}) or None; ``error``: why it failed; ``missing_dependency``: True when
    the failure is an optional package that is not installed.
    """

    fmt: str
    files: tuple[tuple[str, int], ...] = ()
    verification: dict | None = None
    error: str | None = None
    missing_dependency: bool = False
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ExportSummary:
    destination: str
    outcomes: tuple[FormatOutcome, ...]


class ExportWorker(Worker):
    """Export ``source`` (a run folder or model file) into ``destination`` in each of ``formats``.

    Signals (besides :class:`~tlstudio.workers.base.Worker`'s): ``format_started(str)`` and
    ``format_done(object)`` (a :class:`FormatOutcome`). ``progress`` runs from 0 to
    :data:`PROGRESS_SCALE` over all formats; ``finished`` carries an :class:`ExportSummary`.
    """

    format_started = Signal(str)
    format_done = Signal(object)

    def __init__(
        self,
        source: str | Path,
        formats: list[str],
        destination: str | Path,
        *,
        verify: bool = True,
    ) -> None:
        super().__init__()
        self.source = str(source)
        self.formats = list(formats)
        self.destination = Path(destination)
        self.verify = verify

    def work(self) -> ExportSummary:
        from tlstudio.core.deploy import export as core_export
        export_fn = core_export.export_model
        missing_cls = getattr(core_export, "MissingDependency", ())
        n = max(1, len(self.formats))
        outcomes: list[FormatOutcome] = []
        try:
            self.destination.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TlstudioError(f"cannot create the folder {self.destination}: {exc.strerror or exc}") from None
        self.report(0, PROGRESS_SCALE)
        source = self._load_source()
        for i, fmt in enumerate(self.formats):
            if self.cancel_event.is_set():
                raise Cancelled("Export cancelled.")
            self.format_started.emit(fmt)
            self.message.emit(f"Exporting {fmt} ({i + 1} of {len(self.formats)})…")

            def progress(done: int, total: int, _i: int = i) -> None:
                frac = (done / total) if total else 0.0
                self.report(round((_i + min(1.0, max(0.0, frac))) / n * PROGRESS_SCALE), PROGRESS_SCALE)

            def status(text: str, _i: int = i, _fmt: str = fmt) -> None:
                self.message.emit(f"{_fmt} ({_i + 1} of {len(self.formats)}): {text}…")

            kwargs = {"verify": self.verify, "progress": progress, "cancel": self.cancel_event, "status": status}
            try:
                result = export_fn(source, fmt, default_out_path(self.destination, fmt), **kwargs)
            except Cancelled:
                raise
            except TlstudioError as exc:
                missing = bool(missing_cls) and isinstance(exc, missing_cls)
                outcome = FormatOutcome(fmt, error=str(exc), missing_dependency=missing)
            except Exception as exc:  # a converter's internal error: report it for this format, go on
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                outcome = FormatOutcome(fmt, error=f"{type(exc).__name__}: {first}")
            else:
                files = tuple((str(p), int(size)) for p, size in getattr(result, "files", []) or [])
                verification = getattr(result, "verification", None)
                notes = tuple(str(x) for x in getattr(result, "notes", []) or [])
                outcome = FormatOutcome(fmt, files, dict(verification) if verification else None, notes=notes)
            outcomes.append(outcome)
            self.format_done.emit(outcome)
            self.report(round((i + 1) / n * PROGRESS_SCALE), PROGRESS_SCALE)
        return ExportSummary(str(self.destination), tuple(outcomes))

    def _load_source(self):
        """Load the model once for every format (core accepts a Predictor as the source)."""
        from tlstudio.core.deploy.predict import Predictor

        self.message.emit("Loading the model…")
        return Predictor.from_path(self.source)


def default_out_path(destination: Path, fmt: str) -> Path:
    """Where one format goes inside the destination folder: core's default file name."""
    from tlstudio.core.deploy.export import DEFAULT_NAMES

    return Path(destination) / DEFAULT_NAMES.get(fmt, f"model.{fmt}")
