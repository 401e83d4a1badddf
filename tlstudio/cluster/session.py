"""Connecting to a Ray cluster, or starting a throw-away local one, and leaving nothing behind.

``ADDRESS`` is what ``tlstudio train --cluster`` takes:

- ``local:N`` starts a private Ray cluster of N worker CPUs on this machine, with no dashboard
  and its own temporary folder, and stops it (raylet, GCS, workers) when the session ends: for trying
  the cluster path on one machine and for tests. Its processes lead process groups of their own,
  never the caller's: Ray sends signals to whole process groups when it cleans up (the raylet ends
  each worker's group; its reaper ends its own group), and a cluster in the caller's group would put
  the caller (a terminal's job, a test runner and its workers) within reach of those signals.
- ``auto`` joins the cluster this machine belongs to (``ray start`` was run here).
- ``ray://host:10001`` connects through Ray Client to a remote head node; any other address
  Ray understands (``host:6379``) is passed through.

Workers need tlstudio's code: on a local cluster they find it on ``PYTHONPATH``; on a real
cluster it is shipped with the job (Ray's ``py_modules``) so the workers run exactly the
driver's version, unless ``TLSTUDIO_RAY_SHIP_CODE=0`` says the cluster's image has it installed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.cluster import ClusterError, require_ray

# Environment the workers get from the driver: TensorFlow's log level and kernels must match for
# features to be identical to a local run's.
_PASSED_ENV = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "KERAS_HOME", "TLSTUDIO_HOME", "CUDA_VISIBLE_DEVICES")


#: Object store of a local cluster: features stream through it batch by batch, so little is needed.
LOCAL_OBJECT_STORE = 512 * 1024**2


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed ``--cluster`` value."""

    text: str
    local_workers: int = 0  # > 0: start a private local cluster of that many worker CPUs

    @property
    def is_local(self) -> bool:
        return self.local_workers > 0


def parse_address(text: str) -> ClusterAddress:
    """Parse ``local:N``, ``auto``, ``ray://host:port`` or ``host:port``.

    Raises
    ------
    ClusterError
        With a one-line reason when the text is none of these.
    """
    text = (text or "").strip()
    m = re.fullmatch(r"local(?::(\d+))?", text)
    if m:
        n = int(m.group(1) or os.cpu_count() or 1)
        if n < 1:
            raise ClusterError("local:N needs at least one worker (local:2 starts two)")
        return ClusterAddress(text, local_workers=n)
    if text == "auto" or re.fullmatch(r"ray://[\w.\-\[\]:]+:\d+", text) or re.fullmatch(r"[\w.\-]+:\d+", text):
        return ClusterAddress(text)
    raise ClusterError(f"not a cluster address: {text!r} (use local:N, auto, or ray://HOST:PORT)")


def _package_dir() -> str:
    import tlstudio

    return str(Path(tlstudio.__file__).resolve().parent)


def runtime_env(address: ClusterAddress) -> dict[str, Any]:
    """What every Ray worker of a tlstudio job needs: tlstudio's code and TensorFlow's settings."""
    env_vars = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    # Ray Train sets TF_USE_LEGACY_KERAS=1 for Keras 2; tlstudio is Keras 3 throughout.
    env_vars["TF_USE_LEGACY_KERAS"] = "0"
    renv: dict[str, Any] = {"env_vars": env_vars}
    if address.is_local:
        parent = str(Path(_package_dir()).parent)
        env_vars["PYTHONPATH"] = os.pathsep.join(p for p in (parent, os.environ.get("PYTHONPATH", "")) if p)
    elif os.environ.get("TLSTUDIO_RAY_SHIP_CODE", "1") != "0":
        renv["py_modules"] = [_package_dir()]
    return renv


@dataclass
class ClusterSession:
    """An open connection to Ray; a context manager that disconnects (and stops a local cluster).

    Parameters
    ----------
    address
        From :func:`parse_address`.

    Attributes
    ----------
    temp_dir
        The private folder of a local cluster (its sessions, logs and sockets), removed on close.
    storage_dir
        Where Ray Train keeps checkpoints: inside ``temp_dir`` locally; on a real cluster
        ``$TLSTUDIO_RAY_STORAGE`` (a folder or URI every node can reach) or Ray's default.
    """

    address: ClusterAddress
    temp_dir: str | None = None
    storage_dir: str | None = None
    _owned: bool = field(default=False, repr=False)

    def __enter__(self) -> ClusterSession:
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def open(self) -> None:
        if self.address.is_local:
            # A throw-away cluster listens on the loopback address only. Ray turns "127.0.0.1" into the
            # machine's own address unless it believes multi-node clusters are off; say so to this
            # process (below) and to the processes it starts (the environment).
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        require_ray()
        import ray

        if self.address.is_local:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False

        if ray.is_initialized():
            raise ClusterError("Ray is already initialised in this process; close that session first")
        renv = runtime_env(self.address)
        try:
            if self.address.is_local:
                self.temp_dir = tempfile.mkdtemp(prefix="tlray-", dir=_short_temp_root())
                self.storage_dir = os.path.join(self.temp_dir, "train")
                with _own_process_groups():
                    ray.init(
                        address="local",  # a new cluster even when RAY_ADDRESS names another one
                        num_cpus=self.address.local_workers,
                        num_gpus=0,
                        include_dashboard=False,
                        _temp_dir=self.temp_dir,
                        _node_ip_address="127.0.0.1",  # and token authentication, on by default
                        runtime_env=renv,
                        object_store_memory=LOCAL_OBJECT_STORE,
                        log_to_driver=False,
                        logging_level="WARNING",
                    )
            else:
                self.storage_dir = os.environ.get("TLSTUDIO_RAY_STORAGE") or None
                ray.init(address=self.address.text, runtime_env=renv, log_to_driver=False, logging_level="WARNING")
        except ClusterError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user needs one line
            self._remove_temp()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"cannot start or reach the Ray cluster {self.address.text!r}: {first}") from exc
        self._owned = True
        _quiet_ray_data()

    def resources(self) -> dict[str, float]:
        """The cluster's total resources (``{"CPU": 2.0, ...}``)."""
        import ray

        return dict(ray.cluster_resources())

    def close(self) -> None:
        """Disconnect; a local cluster's processes are stopped and its folder removed."""
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False
        self._remove_temp()

    def _remove_temp(self) -> None:
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _short_temp_root() -> str | None:
    """Where a local cluster's folder goes: the temporary folder (``$TMPDIR``) when its path is short,
    else /tmp. Ray's Unix sockets live under the folder and their paths must stay under ~100 characters."""
    root = tempfile.gettempdir()
    if len(root) <= 40:
        return root
    return "/tmp" if os.path.isdir("/tmp") else None


@contextmanager
def _own_process_groups() -> Iterator[None]:
    """While Ray starts a local cluster, every process it starts (GCS, raylet, log monitor) leads a
    process group of its own instead of joining this process's group.

    Ray starts them through one pre-exec hook that every one of them runs (the Linux fate-sharing
    setup, ``set_kill_on_parent_death_linux``); a ``setpgid(0, 0)`` is added in front of it. The
    processes still die with this one (fate-sharing is kept) and still ignore the terminal's Ctrl-C
    (Ray blocks SIGINT in them), so nothing changes for a person at a terminal. Where the hook is
    not there (another Ray), the processes stay in this group, as Ray would have them.
    """
    try:
        from ray._private import utils as ray_utils
    except ImportError:
        yield
        return
    original = getattr(ray_utils, "set_kill_on_parent_death_linux", None)
    if original is None or not hasattr(os, "setpgid"):
        yield
        return

    def own_group_then_original() -> None:  # runs in the child, between fork and exec
        os.setpgid(0, 0)
        original()

    ray_utils.set_kill_on_parent_death_linux = own_group_then_original
    try:
        yield
    finally:
        ray_utils.set_kill_on_parent_death_linux = original


def _quiet_ray_data() -> None:
    """No progress bars or plans on the terminal: tlstudio reports progress through its own events."""
    import logging

    import ray.data

    for name in ("ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False


def processes_under(folder: str) -> list[int]:
    """Ids of live processes whose command line mentions ``folder`` (a local cluster's leftovers)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if folder in cmd:
            found.append(int(entry))
    return found
