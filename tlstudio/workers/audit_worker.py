"""The dataset audit off the GUI thread: features (cache or base model), suspects, duplicates, the map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlstudio.core.config import TrainConfig
from tlstudio.core.events import CacheProgress, Event, LogMessage
from tlstudio.workers.base import Worker


@dataclass(frozen=True)
class AuditOutcome:
    report: Any  # tlstudio.core.data.audit.AuditReport
    coords: Any  # numpy (n, 2): the 2-D map, rows as report.paths
    map_method: str  # "pca" | "umap"


class AuditWorker(Worker):
    """Runs :func:`tlstudio.core.data.audit.audit_dataset` and projects the features for the map.

    Progress is the feature lookup/computation (images done of total); ``finished`` carries an
    :class:`AuditOutcome`.
    """

    def __init__(self, root: str | Path, config: TrainConfig, *, map_method: str = "auto") -> None:
        super().__init__()
        self.root = str(root)
        self.config = TrainConfig.from_dict(config.to_dict())  # a private copy for the thread
        self.map_method = map_method

    def _emit(self, event: Event) -> None:
        if isinstance(event, CacheProgress):
            self.report(event.done, event.total)
        elif isinstance(event, LogMessage):
            self.message.emit(event.text)

    def work(self) -> AuditOutcome:
        from tlstudio.core.data.audit import audit_dataset
        from tlstudio.core.data.feature_map import project_2d

        report = audit_dataset(self.root, self.config, emit=self._emit, cancel=self.cancel_event)
        self.message.emit("drawing the map")
        coords, method = project_2d(report.features, self.map_method, seed=int(self.config.seed))
        return AuditOutcome(report, coords, method)
