"""Finding and ending the engine's processes (Linux reads ``/proc``; elsewhere process groups only).

The engine leads its own process group, and its training child inherits the group, so "the engine
and everything it started" is the group whose id is the engine's pid.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    return text[text.rfind(")") + 2 :].split()


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    if fields is None:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return not PROC.is_dir()
    return fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group ``pgid`` (Linux)."""
    members = []
    if not PROC.is_dir():
        return members
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def descendants(pid: int) -> list[int]:
    """Live children, grandchildren... of ``pid`` (Linux)."""
    children: dict[int, list[int]] = {}
    if not PROC.is_dir():
        return []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def end_group(pgid: int, *, spare: int | None = None, wait: float = 0.0) -> list[int]:
    """SIGKILL every process of group ``pgid`` except ``spare``; never the caller's own group.

    With ``wait``, wait up to that many seconds for them to be gone; returns those still running.
    """
    if pgid <= 1 or (pgid == os.getpgrp() and spare is None):
        return []
    if not PROC.is_dir():
        if spare is None:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return []
    victims = [pid for pid in group_members(pgid) if pid != spare]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    end = time.monotonic() + wait
    left = [pid for pid in victims if is_running(pid)]
    while left and time.monotonic() < end:
        time.sleep(0.02)
        left = [pid for pid in left if is_running(pid)]
    return left
