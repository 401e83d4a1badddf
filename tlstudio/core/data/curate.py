"""Editing a dataset folder in place: new dataset, classes, adding images, relabelling, excluding, undo.

Each edit is planned here as one operation (file moves, copies, folders to make or remove) and
carried out by :mod:`tlstudio.core.data.edit_journal`, which makes it crash-safe (a write-ahead
``pending.json``, idempotent steps, :func:`recover` after a kill) and records it for :func:`undo`.
Every edit first finishes an interrupted one.

Files are never deleted: *exclude* moves them into ``excluded/<dataset name>/`` beside the
dataset (same relative path, unique name) and appends a line saying where each came from to
``excluded/<dataset name>/notes.jsonl``. The one exception is undoing "add images": the copy is
removed only while the original it was copied from is still there, byte for byte; otherwise the
copy is excluded instead. Moves keep file names unique (``name_2.jpg``...).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tlstudio.core.data.edit_journal import (
    NOTES_FILE,
    EditProgress,
    Emit,
    abs_path,
    apply_op,
    excluded_dir,
    ignore,
    new_op,
    now,
    read_journal,
    recover,
    rel_path,
    run_op,
    same_content,
    state_dir,
)
from tlstudio.core.errors import TlstudioError
from tlstudio.core.json_file import loads_json

__all__ = ["EditProgress", "recover", "state_dir", "excluded_dir", "read_journal"]

SPLIT_NAMES = ("train", "val", "test")


class CurateError(TlstudioError):
    """A dataset edit that cannot be done (bad name, missing file, ...)."""


def check_class_name(name: str) -> str:
    """``name`` stripped, or :class:`CurateError` when it cannot be a class folder name."""
    name = (name or "").strip()
    if not name:
        raise CurateError("a class needs a name")
    if name in (".", "..") or name.startswith(".") or any(c in name for c in '/\\:*?"<>|\0'):
        raise CurateError(f"{name!r} cannot be a class name (no slashes, leading dots or :*?\"<>|)")
    if name.lower() in SPLIT_NAMES or name.lower() == "validation":
        raise CurateError(f"{name!r} is reserved for the train/val/test split folders")
    return name


def split_folders(root: Path) -> list[Path]:
    """The folders that hold class folders: the split folders of a pre-split dataset, else ``root``."""
    found = [root / s for s in SPLIT_NAMES if (root / s).is_dir()]
    return found or [root]


def class_folder_of(root: Path, rel: str) -> tuple[str, str | None]:
    """``(class, split)`` of an image path relative to the dataset root."""
    parts = Path(rel).parts
    if len(parts) >= 3 and parts[0] in SPLIT_NAMES:
        return parts[1], parts[0]
    if len(parts) >= 2:
        return parts[0], None
    raise CurateError(f"{rel} is not inside a class folder")


def unique_path(folder: Path, name: str, taken: set[str] | None = None) -> Path:
    """``folder/name``, or ``folder/stem_2.ext``, ``_3``... when that name is used (on disk or in ``taken``)."""
    taken = taken if taken is not None else set()
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while (folder / candidate).exists() or os.path.lexists(folder / candidate) or str(folder / candidate) in taken:
        n += 1
        candidate = f"{stem}_{n}{ext}"
    path = folder / candidate
    taken.add(str(path))
    return path


# --- edits ----------------------------------------------------------------------------------------


def _root(root: str | Path) -> Path:
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise CurateError(f"dataset folder not found: {path}")
    return path


def new_dataset(folder: str | Path, classes: Sequence[str] = ()) -> Path:
    """Create an empty dataset: ``folder`` with one sub-folder per class; refuses a non-empty folder."""
    path = Path(folder).expanduser().resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CurateError(f"{path} already exists and is not an empty folder; choose a new folder")
    names = [check_class_name(c) for c in classes]
    if len({n.lower() for n in names}) != len(names):
        raise CurateError("two classes have the same name")
    path.mkdir(parents=True, exist_ok=True)
    for name in names:
        (path / name).mkdir()
    return path


def add_class(root: str | Path, name: str, emit: Emit = ignore) -> dict[str, Any]:
    """Add an empty class folder (in every split folder of a pre-split dataset)."""
    base = _root(root)
    name = check_class_name(name)
    made = [rel_path(base, f / name) for f in split_folders(base)]
    if any(abs_path(base, m).exists() for m in made):
        raise CurateError(f"class {name!r} already exists")
    return run_op(base, new_op("add_class", f"added class {name}", made_dirs=made, removed_dirs=[]), emit)


def rename_class(root: str | Path, old: str, new: str, emit: Emit = ignore) -> dict[str, Any]:
    """Rename a class folder (in every split where it exists)."""
    base = _root(root)
    new = check_class_name(new)
    moves = []
    for folder in split_folders(base):
        if (folder / old).is_dir():
            if (folder / new).exists() and not (folder / new).samefile(folder / old):
                raise CurateError(f"class {new!r} already exists; move the images into it instead")
            moves.append([rel_path(base, folder / old), rel_path(base, folder / new)])
    if not moves:
        raise CurateError(f"no class named {old!r}")
    return run_op(base, new_op("rename_class", f"renamed class {old} to {new}", moves=moves), emit)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts[-2:]))


def remove_class(root: str | Path, name: str, emit: Emit = ignore) -> dict[str, Any]:
    """Remove a class: its images are excluded (moved beside the dataset), then its empty folders go."""
    base = _root(root)
    folders = [f / name for f in split_folders(base) if (f / name).is_dir()]
    if not folders:
        raise CurateError(f"no class named {name!r}")
    files = [rel_path(base, p) for f in folders for p in _images_in(f)]
    moves, notes = _plan_exclude(base, files, f"class {name} removed")
    removed = [rel_path(base, f) for f in folders]
    op = new_op("remove_class", f"removed class {name} ({len(files)} image(s) excluded)", moves=moves,
                 notes=notes, removed_dirs=removed, made_dirs=[])
    return run_op(base, op, emit)


def _check_inside(base: Path, rel: str) -> Path:
    path = abs_path(base, rel)
    if base not in path.parents:
        raise CurateError(f"{rel} is not inside the dataset")
    if not path.is_file():
        raise CurateError(f"{rel} not found in the dataset")
    return path


def add_images(
    root: str | Path, class_name: str, files: Iterable[str | Path], *, split: str | None = None, emit: Emit = ignore
) -> dict[str, Any]:
    """Copy image files into a class (the originals stay where they are); names are kept unique.

    ``split`` picks the split folder of a pre-split dataset (default: ``train`` when there is one).
    """
    base = _root(root)
    class_name = check_class_name(class_name)
    folders = split_folders(base)
    if folders == [base]:
        target = base / class_name
    else:
        target = base / (split or "train") / class_name
    taken: set[str] = set()
    copies, sources = [], []
    for f in files:
        src = Path(f).expanduser().resolve()
        if not src.is_file():
            raise CurateError(f"not a file: {src}")
        dst = unique_path(target, src.name, taken)
        copies.append([str(src), rel_path(base, dst)])
        sources.append({"path": str(src), "size": src.stat().st_size})
    made = [] if target.is_dir() else [rel_path(base, target)]
    op = new_op("add_images", f"added {len(copies)} image(s) to {class_name}", copies=copies,
                 sources=sources, made_dirs=made)
    return run_op(base, op, emit)


def move_to_class(
    root: str | Path, paths: Sequence[str], class_name: str, emit: Emit = ignore
) -> dict[str, Any]:
    """Relabel images: move each (given relative to the dataset) into ``class_name`` of its own split."""
    base = _root(root)
    class_name = check_class_name(class_name)
    taken: set[str] = set()
    moves, made = [], []
    for rel in paths:
        src = _check_inside(base, rel)
        old_class, split = class_folder_of(base, rel)
        if old_class == class_name:
            continue
        folder = base / split / class_name if split else base / class_name
        if not folder.is_dir() and rel_path(base, folder) not in made:
            made.append(rel_path(base, folder))
        moves.append([rel, rel_path(base, unique_path(folder, src.name, taken))])
    op = new_op("move", f"moved {len(moves)} image(s) to {class_name}", moves=moves, made_dirs=made)
    return run_op(base, op, emit)


def _plan_exclude(base: Path, paths: Sequence[str], reason: str) -> tuple[list[list[str]], list[dict[str, Any]]]:
    target = excluded_dir(base)
    taken: set[str] = set()
    moves, notes = [], []
    when = now()
    for rel in paths:
        src = _check_inside(base, rel)
        dst = unique_path((target / rel).parent, src.name, taken)
        moves.append([rel, rel_path(base, dst)])
        notes.append({"file": rel_path(target, dst), "from": rel, "dataset": str(base), "when": when, "reason": reason})
    return moves, notes


def exclude(root: str | Path, paths: Sequence[str], reason: str = "", emit: Emit = ignore) -> dict[str, Any]:
    """Take images out of the dataset into ``excluded/<name>/`` beside it, with a note of origin."""
    base = _root(root)
    moves, notes = _plan_exclude(base, paths, reason or "excluded")
    return run_op(base, new_op("exclude", f"excluded {len(moves)} image(s)", moves=moves, notes=notes), emit)


def excluded_notes(root: str | Path) -> list[dict[str, Any]]:
    """The notes of excluded images still in the excluded folder (where each came from), newest last."""
    folder = excluded_dir(root)
    seen: dict[str, dict[str, Any]] = {}
    try:
        lines = (folder / NOTES_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            note = loads_json(line, source=NOTES_FILE)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(note, dict) and (folder / str(note.get("file", ""))).is_file():
            seen[note["file"]] = note
    return list(seen.values())


# --- undo -------------------------------------------------------------------------------------------


def can_undo(root: str | Path) -> str | None:
    """The summary of the edit :func:`undo` would revert, or None when there is none."""
    ops = read_journal(root)
    return ops[-1].get("summary", ops[-1].get("kind")) if ops else None


def undo(root: str | Path, emit: Emit = ignore) -> dict[str, Any] | None:
    """Revert the last edit recorded in the journal; returns the undone operation, or None."""
    base = _root(root)
    recover(base, emit)
    ops = read_journal(base)
    if not ops:
        return None
    op = ops[-1]
    moves = [[dst, src] for src, dst in reversed(op.get("moves", []))]
    deletes: list[str] = []
    notes: list[dict[str, Any]] = []
    for (original, copy), source in zip(op.get("copies", []), op.get("sources", []), strict=False):
        orig = Path(original)
        if orig.is_file() and orig.stat().st_size == source.get("size") and same_content(orig, abs_path(base, copy)):
            deletes.append(copy)  # an identical original still exists: the copy is ours to drop
        elif abs_path(base, copy).exists():
            moved, noted = _plan_exclude(base, [copy], "undo of add: the original has changed or gone")
            moves += moved
            notes += noted
    inverse = new_op(
        "undo",
        f"undo: {op.get('summary', op.get('kind'))}",
        undo_of=op["id"],
        moves=moves,
        deletes=deletes,
        notes=notes,
        made_dirs=list(op.get("removed_dirs", [])),
        removed_dirs=list(reversed(op.get("made_dirs", []))),
    )
    apply_op(base, inverse, emit)
    return op


# --- which runs were trained on labels that have changed since -------------------------------------------


def changed_paths_since(root: str | Path, when: str) -> set[str]:
    """Relative paths (before the edit) that edits after ``when`` (ISO time) moved or excluded."""
    since = datetime.fromisoformat(when)
    changed: set[str] = set()
    for op in read_journal(root):
        try:
            at = datetime.fromisoformat(op["when"])
        except (KeyError, ValueError):
            continue
        if at >= since:
            for src, _ in op.get("moves", []):
                changed.add(src)
    return changed


def runs_on_old_labels(root: str | Path, run_dirs: Iterable[str | Path]) -> dict[str, int]:
    """For each run trained on this dataset: how many of its images were relabelled or excluded since.

    Only runs with at least one such image are returned (run folder -> count). A renamed class
    counts its whole folder as one path prefix.
    """
    from tlstudio.core import run_folder

    base = _root(root)
    stale: dict[str, int] = {}
    for run in run_dirs:
        try:
            config, _, split = run_folder.read_run_config(Path(run))
            created = run_folder.read_summary(run).created
        except TlstudioError:
            continue
        if not created or Path(config.data_dir).resolve() != base:
            continue
        changed = changed_paths_since(base, created)
        if not changed:
            continue
        used = [p for part in split.values() for p in part]
        n = sum(1 for p in used if p in changed or any(p.startswith(c + "/") for c in changed))
        if n:
            stale[str(run)] = n
    return stale
