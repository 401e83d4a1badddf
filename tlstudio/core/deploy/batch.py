"""Predicting many files: folders expanded recursively, batches with progress and cancel, CSV out."""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tlstudio.core.deploy.predict import BATCH, PredictError, Prediction, Predictor
from tlstudio.core.errors import Cancelled

CSV_HEADER = ("path", "label", "probability", "top_k", "error")
#: First characters that make a spreadsheet read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (recursively, sorted, hidden files skipped) into a list of files.

    Every file in a folder is listed, images or not, so a file that cannot be read still gets its
    row with the reason.

    Raises
    ------
    PredictError
        When a given path does not exist.
    """
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        out.append(Path(dirpath) / name)
        elif path.exists():
            out.append(path)
        else:
            raise PredictError(f"no such file or folder: {path}")
    return out


def format_top(top: Sequence[tuple[str, float]]) -> str:
    """``"cat:0.9100;dog:0.0700"``: the top-k column of the CSV."""
    return ";".join(f"{name}:{prob:.4f}" for name, prob in top)


def csv_cell(text: str) -> str:
    """``text`` made safe for a spreadsheet: a cell that would start a formula gets a leading ``'``.

    File and class names come from the user's disk; opened in Excel or LibreOffice, a cell like
    ``=HYPERLINK(...)`` would run as a formula (CSV injection, OWASP).
    """
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def csv_row(pred: Prediction) -> list[str]:
    """One CSV row (see :data:`CSV_HEADER`), every text cell escaped with :func:`csv_cell`."""
    if pred.error is not None:
        return [csv_cell(pred.source), "", "", "", csv_cell(pred.error)]
    return [csv_cell(pred.source), csv_cell(pred.label), f"{pred.probability:.4f}", csv_cell(format_top(pred.top)), ""]


def predict_files(
    predictor: Predictor,
    paths: Iterable[str | os.PathLike[str]],
    *,
    top_k: int = 3,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Prediction]:
    """Predict every file under ``paths`` (folders recursively), in batches, with progress and cancel."""
    files = collect_files(paths)
    total = len(files)
    results: list[Prediction] = []
    if progress:
        progress(0, total)
    for start in range(0, total, BATCH):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Prediction cancelled.")
        chunk = files[start : start + BATCH]
        results.extend(predictor.predict([str(f) for f in chunk], top_k=top_k, threshold=threshold))
        if progress:
            progress(len(results), total)
    return results


def predict_folder_to_csv(
    predictor: Predictor,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out_csv: str | os.PathLike[str],
    top_k: int = 3,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    threshold: float | None = None,
) -> list[Prediction]:
    """Classify every file under ``paths`` and write a CSV with one row per file.

    Columns: ``path, label, probability, top_k, error``; ``top_k`` holds ``label:prob`` pairs
    joined by ``;``. A file that cannot be read gets a row with the reason in ``error``.
    The CSV is written atomically once all files are done.

    Returns
    -------
    list of Prediction
        The rows, in file order.
    """
    from tlstudio.core.atomic import write_text

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    results = predict_files(predictor, paths, top_k=top_k, threshold=threshold, progress=progress, cancel=cancel)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for pred in results:
        writer.writerow(csv_row(pred))
    write_text(Path(out_csv), buf.getvalue())
    return results
