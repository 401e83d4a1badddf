"""What ``--cluster ADDRESS`` adds to a training run: a Ray session and the engines core will use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tlstudio.cluster import require_ray


@contextmanager
def cluster_training(address: str) -> Iterator[dict[str, Any]]:
    """Open the cluster at ``address`` for one run; yields the keyword arguments for ``train()``.

    ``train(config, run_dir, **kwargs)`` then computes missing features on the cluster and
    fine-tunes there (``engines``: :class:`~tlstudio.core.train.engines.Engines`); everything
    else, the cache and the run folder included, stays in this process. A local cluster (``local:N``) is
    stopped when the block ends, whatever happened inside it.

    Raises
    ------
    tlstudio.cluster.ClusterError
        Ray is not installed (the message says what to install), the address is malformed,
        or the cluster cannot be started or reached.
    """
    from tlstudio.cluster.session import ClusterSession, parse_address

    parsed = parse_address(address)
    require_ray()
    from tlstudio.cluster.features import RayFeatureEngine
    from tlstudio.cluster.finetune import RayFineTuner
    from tlstudio.core.train.engines import Engines

    with ClusterSession(parsed) as session:
        yield {"engines": Engines(features=RayFeatureEngine(), fine_tuner=RayFineTuner(session))}
