"""tlstudio on a Ray cluster: feature extraction and fine-tuning spread over many processes or machines.

Optional: ``pip install "tlstudio[cluster]"`` adds Ray. ``tlstudio.core`` never imports this
package (nor Ray); the CLI hands core a *features engine* from here (:mod:`.features`), and
fine-tuning runs through Ray Train (:mod:`.finetune`). :mod:`.session` connects to a cluster, or
starts a throw-away local one (``local:N``) and stops it afterwards.
"""

from __future__ import annotations

from tlstudio.core.errors import TlstudioError

INSTALL_HINT = 'running on a cluster needs Ray: pip install "tlstudio[cluster]"'


class ClusterError(TlstudioError):
    """The cluster could not be reached or used (one line for the user)."""


def require_ray() -> None:
    """Raise :class:`ClusterError` with the install line when Ray (with Data and Train) is missing."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
        import ray.train  # noqa: F401
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
