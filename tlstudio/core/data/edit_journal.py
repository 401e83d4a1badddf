"""The crash-safe executor and undo journal behind :mod:`tlstudio.core.data.curate`.

An *operation* is a plain JSON-able dict: ``made_dirs``, ``copies`` ``[[abs source, rel target]]``,
``moves`` ``[[rel source, rel target]]``, ``deletes``, ``removed_dirs`` (paths relative to the
dataset root; excluded files live outside it, as ``../excluded/...``), ``notes`` for the excluded
folder, and ``id``/``kind``/``when``/``summary``.

:func:`apply_op` makes it crash-safe:

1. the operation is written to ``DATA/.tlstudio/pending.json`` (atomically) before anything moves;
2. each step is idempotent: a move whose target exists and whose source is gone is already done;
   a move across file systems copies to a hidden ``.partial`` name, renames it, then removes the
   source, so a file always exists at its source or its target, never nowhere;
3. the finished operation is appended to ``DATA/.tlstudio/journal.json`` and the pending file is
   removed.

A process killed anywhere in between leaves ``pending.json``; :func:`recover` finishes the
operation (rolling forward: the user asked for it). The hidden ``.tlstudio`` folder is ignored by
:func:`tlstudio.core.data.scan.scan_dataset`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlstudio.core.atomic import write_json
from tlstudio.core.events import Event
from tlstudio.core.json_file import read_json

STATE_DIR = ".tlstudio"
JOURNAL_FILE = "journal.json"
PENDING_FILE = "pending.json"
EXCLUDED_DIR = "excluded"
NOTES_FILE = "notes.jsonl"
PARTIAL_SUFFIX = ".partial"
#: Journal entries kept for undo (older ones are dropped; their edits stay done).
JOURNAL_LIMIT = 200

Emit = Callable[[Event], None]


@dataclass(frozen=True)
class EditProgress(Event):
    """Progress of one dataset edit: ``done`` of ``total`` files handled."""

    kind: str
    done: int
    total: int


def now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="microseconds")


def ignore(event: Event) -> None:
    pass


# --- where things are ---------------------------------------------------------------------------


def state_dir(root: str | Path) -> Path:
    """The hidden folder inside the dataset that holds the undo journal and review decisions."""
    return Path(root) / STATE_DIR


def excluded_dir(root: str | Path) -> Path:
    """Where excluded images of the dataset ``root`` go: ``<parent>/excluded/<name>/``."""
    root = Path(root).resolve()
    return root.parent / EXCLUDED_DIR / root.name


def abs_path(root: Path, rel: str) -> Path:
    return Path(os.path.normpath(root / rel))


def rel_path(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


# --- the journal and the crash-safe executor ----------------------------------------------------


def read_journal(root: str | Path) -> list[dict[str, Any]]:
    """The finished operations of the dataset, oldest first (empty when none or unreadable)."""
    path = state_dir(root) / JOURNAL_FILE
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return []
    return list(data.get("operations", [])) if isinstance(data, dict) else []


def _write_journal(root: Path, ops: list[dict[str, Any]]) -> None:
    write_json(state_dir(root) / JOURNAL_FILE, {"version": 1, "operations": ops[-JOURNAL_LIMIT:]})


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _move_file(src: Path, dst: Path) -> None:
    """Move one file or folder; across file systems copy to a hidden partial name first."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")
    if src.is_dir():
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(src, partial)
    else:
        shutil.copy2(src, partial)
        _fsync_file(partial)
    os.rename(partial, dst)
    if src.is_dir():
        shutil.rmtree(src)
    else:
        src.unlink()


def same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                ca, cb = fa.read(1 << 20), fb.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError:
        return False


def _do_move(root: Path, src_rel: str, dst_rel: str) -> None:
    src, dst = abs_path(root, src_rel), abs_path(root, dst_rel)
    partial = dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")
    if partial.exists() and src.exists():
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink()  # an unfinished copy
    src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
    if src_there and not dst_there:
        _move_file(src, dst)
    elif src_there and dst_there and src.is_file() and same_content(src, dst):
        src.unlink()  # killed after a cross-device copy was renamed, before the source went
    # dst there and src gone: already done. Neither there: the file went some other way (another
    # program); there is nothing left to move, and refusing would block every later edit.


def _do_copy(root: Path, src_abs: str, dst_rel: str) -> None:
    dst = abs_path(root, dst_rel)
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")
    shutil.copy2(src_abs, partial)
    _fsync_file(partial)
    os.rename(partial, dst)


def _write_notes(root: Path, op: dict[str, Any]) -> None:
    notes = op.get("notes") or []
    if not notes:
        return
    path = excluded_dir(root) / NOTES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for note in notes:
            fh.write(json.dumps(note, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def apply_op(root: Path, op: dict[str, Any], emit: Emit = ignore, *, resumed: bool = False) -> dict[str, Any]:
    """Carry out ``op`` crash-safely (see the module docstring) and record it in the journal."""
    pending = state_dir(root) / PENDING_FILE
    if not resumed:
        write_json(pending, op)
        _write_notes(root, op)  # a note about a file not yet moved is harmless; a moved file without one is not
    for rel in op.get("made_dirs", []):
        abs_path(root, rel).mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Any]] = [("copy", c) for c in op.get("copies", [])]
    steps += [("move", m) for m in op.get("moves", [])]
    steps += [("delete", d) for d in op.get("deletes", [])]
    total = len(steps)
    for done, (kind, step) in enumerate(steps, 1):
        if kind == "copy":
            _do_copy(root, step[0], step[1])
        elif kind == "move":
            _do_move(root, step[0], step[1])
        else:
            abs_path(root, step).unlink(missing_ok=True)
        emit(EditProgress(kind=op["kind"], done=done, total=total))
    for rel in op.get("removed_dirs", []):
        folder = abs_path(root, rel)
        try:
            folder.rmdir()  # only when empty: a folder with files in it is never removed
        except OSError:
            pass
    ops = read_journal(root)
    undo_of = op.get("undo_of")
    if undo_of:
        ops = [o for o in ops if o.get("id") != undo_of]
    elif not any(o.get("id") == op["id"] for o in ops):
        ops.append(op)
    _write_journal(root, ops)
    pending.unlink(missing_ok=True)
    return op


def recover(root: str | Path, emit: Emit = ignore) -> dict[str, Any] | None:
    """Finish an edit that was interrupted (the process was killed mid-way); returns it, or None."""
    root = Path(root).resolve()
    pending = state_dir(root) / PENDING_FILE
    try:
        op = read_json(pending)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # The pending file is written atomically, so a damaged one was never acted on.
        pending.unlink(missing_ok=True)
        return None
    return apply_op(root, op, emit, resumed=True)


def new_op(kind: str, summary: str, **parts: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "kind": kind, "when": now(), "summary": summary, **parts}


def run_op(root: Path, op: dict[str, Any], emit: Emit) -> dict[str, Any]:
    recover(root, emit)
    return apply_op(root, op, emit)


