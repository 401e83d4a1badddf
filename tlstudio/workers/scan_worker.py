"""Scan a dataset folder on a worker thread."""

from __future__ import annotations

from pathlib import Path

from tlstudio.workers.base import Worker


class ScanWorker(Worker):
    """Runs :func:`tlstudio.core.data.scan.scan_dataset` on ``root``.

    ``progress(done, total)`` follows the scan; ``succeeded`` carries the :class:`DatasetScan`;
    :meth:`request_cancel` stops the scan soon (``cancelled`` is emitted).
    """

    def __init__(self, root: str | Path) -> None:
        super().__init__()
        self.root = str(root)

    def work(self):
        from tlstudio.core.data.scan import scan_dataset

        self.message.emit(f"Scanning {Path(self.root).name}...")
        return scan_dataset(self.root, progress=self.report, cancel=self.cancel_event)
