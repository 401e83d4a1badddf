"""The one JSON reader: project files, run files, model configs and cache indexes all come through here.

A JSON file is input like any other: it may be damaged, huge, not a file at all, or nested so
deeply that Python's parser (or the code walking the result) runs out of stack. Each of those is
a :class:`JsonError` with one clear line, never a ``RecursionError`` or a hang.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tlstudio.core.errors import TlstudioError
from tlstudio.core.safe_files import FileTooLargeError, NotRegularFileError, read_bytes

#: Deepest nesting accepted. Real files stay far below (a Keras functional config: about 12-20),
#: and the limit keeps every recursive walk of the result well inside Python's stack.
MAX_DEPTH = 100
#: Largest JSON file read by default (a big model's config is a few MB).
MAX_BYTES = 64 * 1024 * 1024

_MISSING: Any = object()


class JsonError(TlstudioError, ValueError):
    """A JSON file or text cannot be used; the message names it and says why, in one line.

    It is a :class:`ValueError` too, so callers that already catch ``ValueError`` for bad JSON
    keep working.
    """


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, walked without recursion; stops counting past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads_json(
    text: str | bytes,
    *,
    source: str = "JSON",
    max_depth: int = MAX_DEPTH,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Parse JSON text, refusing malformed or too deeply nested data with one clear line.

    Parameters
    ----------
    text
        The JSON document (bytes are decoded as UTF-8, a BOM allowed).
    source
        What the text is, for the message (a file name, ``"config.json in model.keras"``).
    max_depth
        Deepest nesting of arrays and objects accepted.
    object_hook
        Passed to :func:`json.loads` (decodes special objects).

    Raises
    ------
    JsonError
        The text is not valid JSON, not UTF-8, or nested deeper than ``max_depth``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JsonError(f"{source}: not UTF-8 text, so not a JSON file") from None
    try:
        data = json.loads(text, object_hook=object_hook)
    except RecursionError:
        raise JsonError(f"{source}: nested too deeply (over {max_depth} levels); the file is damaged or hostile") from None
    except json.JSONDecodeError as exc:
        raise JsonError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if _depth(data, max_depth) > max_depth:
        raise JsonError(f"{source}: nested too deeply (over {max_depth} levels); the file is damaged or hostile")
    return data


def read_json(
    path: str | os.PathLike[str],
    default: Any = _MISSING,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    expect: type | None = None,
) -> Any:
    """Read a JSON file safely.

    Parameters
    ----------
    path
        The file. Only a regular file is read (a FIFO or device is refused, never waited on).
    default
        Returned when the file does not exist. Without it a missing file raises
        :class:`FileNotFoundError`.
    max_bytes
        Larger files are refused before they are read.
    max_depth
        Deepest nesting accepted, see :func:`loads_json`.
    expect
        ``dict`` or ``list``: the top-level value must be of that type.

    Raises
    ------
    FileNotFoundError
        The file does not exist and no ``default`` was given.
    JsonError
        The file is not a regular file, too large, not UTF-8, not valid JSON, too deeply nested,
        or not of the ``expect`` type.
    OSError
        The file exists but cannot be read (permission denied, ...).
    """
    path = Path(path)
    try:
        raw = read_bytes(path, max_bytes=max_bytes)
    except FileNotFoundError:
        if default is _MISSING:
            raise
        return default
    except (NotRegularFileError, FileTooLargeError) as exc:
        raise JsonError(str(exc)) from None
    data = loads_json(raw, source=str(path), max_depth=max_depth)
    if expect is not None and not isinstance(data, expect):
        kind = "an object" if expect is dict else ("a list" if expect is list else expect.__name__)
        raise JsonError(f"{path}: expected {kind} at the top level, found {type(data).__name__}")
    return data
