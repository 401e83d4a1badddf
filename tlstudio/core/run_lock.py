"""One writer per run folder, and runs that end in a true state.

:func:`writing` is what a training holds while it writes a run folder:

- a new run goes only into a folder that is new or empty (never over a run, an export or a user's
  files), and a path that names a file is refused;
- a second process that wants the same folder is refused at once: the lock is an OS file lock
  (``fcntl.flock`` / ``msvcrt.locking``) on ``RUN_DIR/.lock``, which the OS releases when its process
  dies, however it dies, so a crash never leaves it held;
- a run stopped by a signal or a second Ctrl-C says "interrupted" (a killed process cannot say it, so
  readers take "running" without a live lock holder as "interrupted", see
  :func:`tlstudio.core.run_folder.read_summary`);
- a resumed run is checked first (:func:`tlstudio.core.run_folder.check_resumable`);
- a new run that fails or is cancelled before its first epoch leaves no folder behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tlstudio.core import run_folder
from tlstudio.core.run_folder import RunError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _try_lock(fh: IO[str]) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        return "another process"
    return f"process {pid}"


class RunLock:
    """The lock on one run folder; :meth:`acquire` refuses at once when a live process holds it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / run_folder.LOCK_FILE
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises
        ------
        RunError
            When another live process holds it (the message names its pid).
        """
        try:
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise RunError(f"cannot write into {self.path.parent}: {exc.strerror or exc}") from None
        if not _try_lock(fh):
            fh.close()
            raise RunError(
                f"{self.path.parent} is being written by {_holder(self.path)}: one training per run folder "
                "(wait for it to end, or choose another folder)"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file drops the OS lock
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(run_dir: str | Path) -> bool:
    """True when a live process holds ``run_dir``'s lock (this one included)."""
    path = Path(run_dir) / run_folder.LOCK_FILE
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError:
        return False
    with fh:
        return not _try_lock(fh)


def check_new_run_dir(run_dir: str | Path) -> None:
    """Refuse a path for a new run that names a file or a folder holding anything.

    Raises
    ------
    RunError
        Saying what is there and how to choose another folder.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.exists():
        raise RunError(f"{run_dir} is a broken link; give a new folder for the run")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a folder; give a new folder for the run")
    if run_dir.is_dir():
        names = sorted(p.name for p in run_dir.iterdir())
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            what = "a training run" if run_folder.is_run(run_dir) else shown
            hint = f"resume it with --resume {run_dir}, or " if run_folder.is_run(run_dir) else ""
            raise RunError(
                f"{run_dir} already holds {what}; tlstudio writes a new run only into a new or empty folder: "
                f"{hint}choose another --out"
            )


def _has_progress(run_dir: Path) -> bool:
    """True once a run completed an epoch (a checkpoint) or saved a model: then it is worth keeping."""
    return (run_folder.checkpoint_dir(run_dir) / run_folder.STATE_FILE).is_file() or run_folder.has_model(run_dir)


@contextlib.contextmanager
def writing(run_dir: str | Path, *, resume: bool = False) -> Iterator[RunLock]:
    """Hold ``run_dir`` for one training (see the module docstring).

    Parameters
    ----------
    run_dir
        The run folder: new or empty, or with ``resume=True`` an existing run.
    resume
        Continue the run in ``run_dir`` (checked with :func:`tlstudio.core.run_folder.check_resumable`).

    Raises
    ------
    RunError
        A folder that is not free, not a run, held by another process or not resumable.
    """
    run_dir = Path(run_dir)
    if resume:
        if not run_dir.is_dir():
            raise RunError(f"run folder not found: {run_dir}")
        created, top = False, run_dir
    else:
        check_new_run_dir(run_dir)
        created = not run_dir.exists()
        # The outermost folder this run makes: removed with it when the run leaves nothing worth keeping.
        top = next((a for a in reversed([run_dir, *run_dir.parents]) if not a.exists()), run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunError:
        if created:
            _remove_made(run_dir, top)
        raise
    try:
        if resume:
            run_folder.check_resumable(run_dir)
        yield lock
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        interrupted = not isinstance(exc, Exception)
        if not resume and not _has_progress(run_dir):
            lock.release()
            # Everything in it is this run's: the folder was new or empty when it was claimed.
            if created:
                _remove_made(run_dir, top)
            else:
                _empty(run_dir)
        elif interrupted:
            run_folder.mark_interrupted(run_dir)
        raise
    finally:
        lock.release()


def _remove_made(run_dir: Path, top: Path) -> None:
    """Remove ``run_dir`` and the parents made for it up to ``top``, where they are left empty."""
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in run_dir.parents:
        if top != run_dir and (parent == top or top in parent.parents):
            try:
                parent.rmdir()
            except OSError:
                break
        else:
            break


def _empty(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
