"""Export a trained model to the formats other programs run: the one export loop of the CLI and the GUI.

Each format asked for is written (:mod:`tlstudio.core.deploy.formats`) with a sample script
``predict_<format>.py`` and, with ``verify=True``, checked in a fresh process
(:mod:`tlstudio.core.deploy.verification`). A format that fails is reported with its one-line reason
in its :class:`ExportResult` and the others still go ahead. Beside the models go one ``labels.txt``
and one ``model_card.md`` that lists every format written, with its verification.

Nothing is overwritten: a destination folder must be new or empty, a file name must not exist, and
neither may the files written beside it. Everything is staged in a hidden folder inside the
destination and moved into place at the end (the models last), so a failed or cancelled export
leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from tlstudio import __version__
from tlstudio.core import run_folder
from tlstudio.core.deploy.formats import (
    DEFAULT_NAMES,
    FORMATS,
    INSTALL_ONNX,
    ExportError,
    MissingDependency,
    check_format,
    require_onnx,
    run_split_images,
    write_format,
)
from tlstudio.core.deploy.verification import (
    VerificationError,
    compare_outputs,
    describe_verification,
    verify_export,
)
from tlstudio.core.errors import Cancelled, TlstudioError

__all__ = [
    "DEFAULT_NAMES", "FORMATS", "INSTALL_ONNX", "ExportError", "ExportResult", "MissingDependency",
    "VerificationError", "check_format", "compare_outputs", "describe_verification", "export_model",
    "export_models", "plan_export", "resolve_target", "run_split_images",
]

CARD_FILE = "model_card.md"
_STAGE_PREFIX = ".tlstudio-export-"


@dataclass
class ExportResult:
    """What one format of an export gave.

    Attributes
    ----------
    format
        One of :data:`FORMATS`.
    path
        The exported model file (a folder for ``savedmodel``).
    files
        (path, size in bytes) of everything written for it, the model first, then its sample script,
        ``labels.txt`` and ``model_card.md``. A folder's size is the sum of its files. Empty on failure.
    verification
        ``{"top1_agreement", "max_prob_diff", "n", "ok", "tolerance", "inputs", ...}`` or None.
    notes
        Remarks for the user (how int8 was calibrated, ...).
    error
        Why the format failed (one line), None when it was written.
    missing_dependency
        True when it failed for an optional package that is not installed.
    """

    format: str
    path: Path
    files: list[tuple[Path, int]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    missing_dependency: bool = False
    failure: TlstudioError | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _is_savedmodel(path: Path) -> bool:
    return (path / "saved_model.pb").is_file()


def resolve_target(fmt: str, out_path: str | os.PathLike[str]) -> Path:
    """The model path to write for ``out_path``: itself, or the default name inside a folder.

    A path that is an existing folder, ends with a separator or has no suffix (other than for
    ``savedmodel``, which is a folder) is taken as a folder.
    """
    raw = os.fspath(out_path)
    path = Path(raw).expanduser()
    if raw.endswith(("/", os.sep)):
        as_folder = True
    elif path.is_dir():
        as_folder = not (fmt == "savedmodel" and _is_savedmodel(path))
    else:
        as_folder = fmt != "savedmodel" and not path.suffix
    if as_folder:
        path = path / DEFAULT_NAMES[fmt]
    if fmt == "keras" and path.suffix != ".keras":
        raise ExportError(f"a Keras export must end in .keras, not {path.name}")
    if fmt == "savedmodel" and path.is_file():
        raise ExportError(f"{path} is a file; a SavedModel is a folder")
    return path


def _listing(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def free_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` when it is new or empty, else the first of ``folder-2``, ``folder-3``, ... that is."""
    folder = Path(folder)
    candidate, n = folder, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


def plan_export(formats: Sequence[str], out_path: str | os.PathLike[str]) -> tuple[Path, dict[str, Path]]:
    """The destination folder and each format's model path, refusing anything that would overwrite.

    Raises
    ------
    ExportError
        When the folder holds something already (a folder target) or a file to be written exists.
    """
    from tlstudio.core.deploy.sample_scripts import script_name

    given = Path(os.fspath(out_path)).expanduser()
    if len(formats) == 1:
        target = resolve_target(formats[0], out_path)
        folder, targets = target.parent, {formats[0]: target}
        as_folder = target.parent == given
    else:
        folder, as_folder = given, True
        targets = {fmt: folder / DEFAULT_NAMES[fmt] for fmt in formats}
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file, not a folder: give a new folder to export into")
    if as_folder and folder.is_dir():
        present = [p.name for p in folder.iterdir() if not p.name.startswith(_STAGE_PREFIX)]
        if present:
            raise ExportError(
                f"{folder} is not empty (it holds {_listing(present)}); tlstudio exports only into a new or "
                f"empty folder, so nothing is overwritten: choose another, e.g. {free_folder(folder)}"
            )
    if folder.is_dir():
        names = [t.name for t in targets.values()] + [script_name(f) for f in targets]
        names += [run_folder.LABELS_FILE, CARD_FILE]
        clash = [n for n in names if (folder / n).exists() or (folder / n).is_symlink()]
        if clash:
            raise ExportError(
                f"{folder} already holds {_listing(clash)}; tlstudio does not overwrite files: "
                "choose another name or folder"
            )
    return folder, targets


def step_reporter(
    total: int,
    cancel: threading.Event | None,
    status: Callable[[str], None] | None,
    progress: Callable[[int, int], None] | None,
) -> Callable[[str], None]:
    """A ``step(text)`` callable for an export of ``total`` steps: it checks ``cancel``, then reports.

    Parameters
    ----------
    total : int
        How many steps the export takes (for ``progress(done, total)``).
    cancel : threading.Event or None
        Set to stop; the next step raises :class:`Cancelled`.
    status, progress : callable or None
        Receive the step's text and ``(steps done, total)``.
    """
    done = 0

    def step(text: str) -> None:
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise Cancelled("Export cancelled.")
        if status:
            status(text)
        if progress:
            progress(done, total)
        done += 1

    return step


def _as_predictor(source: Any) -> Any:
    from tlstudio.core.deploy.predict import Predictor

    return source if isinstance(source, Predictor) else Predictor.from_path(source)


def _make_stage(folder: Path) -> tuple[Path, bool]:
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, suffix=".tmp", dir=folder)), created
    except OSError as exc:
        raise ExportError(f"cannot write into {folder}: {exc.strerror or exc}") from None


def _remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _place(staged: Path, target: Path) -> None:
    """Move a staged file or folder into place, never over something that appeared meanwhile."""
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # an empty folder given as a folder export's target
    if target.exists() or target.is_symlink():
        raise ExportError(f"{target} appeared while exporting; it was left as it is and nothing was written")
    os.rename(staged, target)


def export_models(
    source: Any,
    formats: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    images: Iterable[str | os.PathLike[str]] | None = None,
    status: Callable[[str], None] | None = None,
    on_format: Callable[[str], None] | None = None,
) -> list[ExportResult]:
    """Export to each of ``formats``; a format that fails is reported and the others go on.

    Parameters
    ----------
    source
        A run folder, a ``.keras`` / ``.h5`` model file, or a :class:`~tlstudio.core.deploy.predict.Predictor`.
    formats
        Names from :data:`FORMATS` (case and ``_`` tolerated).
    out_dir
        A new or empty folder that receives every format under its default name (see
        :data:`DEFAULT_NAMES`); with one format it may also be the model's own file name.
    verify
        Reload each export in a fresh process with its own runtime and compare it with the Keras
        model; a difference beyond the format's tolerance fails that format.
    progress
        ``progress(done, total)`` over the whole export's steps.
    cancel
        Set it to stop between steps (raises :class:`~tlstudio.core.errors.Cancelled`; nothing is written).
    images
        Images or folders used for int8 calibration when the run's training images are missing,
        and for verification instead of the run's validation images.
    status
        ``status(text)`` with a line about the step in progress.
    on_format
        ``on_format(fmt)`` when a format starts.

    Returns
    -------
    list of ExportResult
        One per format, in order; failed ones carry their ``error``.

    Raises
    ------
    ExportError
        An unknown format, a destination that would be overwritten or cannot be written, or a model
        that cannot be loaded: nothing was written.
    """
    from tlstudio.core.deploy.sample_scripts import TITLES, script_name

    wanted = list(dict.fromkeys(check_format(f) for f in formats))
    if not wanted:
        raise ExportError("no export format given")
    if wanted == ["web"]:  # a self-contained folder with its own labels and card: its own target rules
        return [_export_web_alone(source, out_dir, verify=verify, progress=progress, cancel=cancel,
                                  images=images, status=status)]
    if wanted == ["onnx"]:
        require_onnx(verify=verify)  # before loading anything: the one format cannot be written
    folder, targets = plan_export(wanted, out_dir)
    total = 2 + len(wanted) * (2 if verify else 1)
    step = step_reporter(total, cancel, status, progress)

    stage, created = _make_stage(folder)  # a folder that cannot be written is refused before the model loads
    results: list[ExportResult] = []
    try:
        step("Loading the model")
        predictor = _as_predictor(source)
        for fmt in wanted:
            if on_format:
                on_format(fmt)
            result = ExportResult(fmt, targets[fmt])
            name, script = targets[fmt].name, script_name(fmt)
            scratch = stage / f".scratch-{fmt}"
            try:
                scratch.mkdir()
                if fmt == "web":
                    from tlstudio.core.deploy.web_export import write_web_into

                    (stage / name).mkdir()
                    write_web_into(predictor, stage / name, verify=verify, images=images, cancel=cancel,
                                   step=step, result=result)
                    results.append(result)
                    continue
                step(f"Writing {TITLES[fmt]}")
                if fmt == "onnx":
                    require_onnx(verify=verify)
                result.notes = write_format(predictor, fmt, stage / name, scratch, images)
                if verify:
                    step(f"Checking the {fmt} file in a fresh process")
                    result.verification = verify_export(predictor, fmt, stage / name, images=images, scratch=scratch)
                    if not result.verification["ok"]:
                        raise VerificationError(
                            f"the {fmt} export does not give the Keras model's answers "
                            f"({describe_verification(result.verification)}); nothing was written"
                        )
                _write_script(predictor, fmt, name, stage / script)
            except Cancelled:
                raise
            except (TlstudioError, OSError) as exc:
                failure = exc if isinstance(exc, TlstudioError) else ExportError(
                    f"{fmt} export failed: {exc.strerror or exc}")
                result.error, result.failure = str(failure), failure
                result.missing_dependency = isinstance(failure, MissingDependency)
                _remove(stage / name, stage / script)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            results.append(result)
        step("Writing labels and the model card")
        ok = [r for r in results if r.ok]
        if ok:
            _write_shared(predictor, stage, ok)
            # The models last: whoever watches the folder sees the sidecars before a model appears.
            models = {r.path.name for r in ok}
            for staged in sorted(stage.iterdir(), key=lambda p: p.name in models):
                _place(staged, folder / staged.name)
            shared = [(folder / n, _size(folder / n)) for n in (run_folder.LABELS_FILE, CARD_FILE)]
            for r in ok:
                script_path = folder / script_name(r.format)
                scripts = [(script_path, _size(script_path))] if r.format != "web" else []
                r.files = [(r.path, _size(r.path)), *scripts, *shared]
    except OSError as exc:
        raise ExportError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(r.ok for r in results):
            with contextlib.suppress(OSError):
                folder.rmdir()  # the folder this export made, left empty
    if progress:
        progress(total, total)
    return results


class ExportOptions(TypedDict, total=False):
    """The keyword arguments :func:`export_model` passes on to :func:`export_models` (same meaning)."""

    verify: bool
    progress: Callable[[int, int], None] | None
    cancel: threading.Event | None
    images: Iterable[str | os.PathLike[str]] | None
    status: Callable[[str], None] | None


def export_model(source: Any, fmt: str, out_path: str | os.PathLike[str], **options: Unpack[ExportOptions]) -> ExportResult:
    """Export one format (see :func:`export_models`); ``out_path`` is the model's file name or a folder.

    Raises
    ------
    ExportError
        With the reason; nothing is left at ``out_path``. :class:`MissingDependency` when the
        format's optional packages are not installed, :class:`VerificationError` when the
        exported file disagrees with the Keras model.
    """
    (result,) = export_models(source, [fmt], out_path, **options)
    if result.failure is not None:
        raise result.failure
    return result


def _export_web_alone(source: Any, out_path: str | os.PathLike[str], **options: Any) -> ExportResult:
    """A web export on its own (see :func:`tlstudio.core.deploy.web_export.export_web`), reported like the others."""
    from tlstudio.core.deploy.web_export import export_web, resolve_web_target

    try:
        return export_web(source, out_path, **options)
    except Cancelled:
        raise
    except (VerificationError, MissingDependency) as exc:
        return ExportResult("web", resolve_web_target(out_path), error=str(exc), failure=exc,
                            missing_dependency=isinstance(exc, MissingDependency))


def _write_script(predictor: Any, fmt: str, model_name: str, path: Path) -> None:
    from tlstudio.core.deploy.sample_scripts import sample_script

    text = sample_script(fmt, model_name, predictor.input_size, predictor.resize_policy, __version__,
                         getattr(predictor, "threshold", None))
    path.write_text(text, encoding="utf-8")


def _write_shared(predictor: Any, stage: Path, results: list[ExportResult]) -> None:
    """``labels.txt`` and one ``model_card.md`` listing every format of this export."""
    from tlstudio.core.deploy.model_card import model_card
    from tlstudio.core.deploy.sample_scripts import TITLES, script_name

    (stage / run_folder.LABELS_FILE).write_text("".join(f"{label}\n" for label in predictor.labels), encoding="utf-8")
    files: list[tuple[str, str]] = []
    for r in results:
        files.append((r.path.name, TITLES[r.format] + (f" ({'; '.join(r.notes)})" if r.notes else "")))
        if r.format != "web":
            files.append((script_name(r.format), f"sample script: python {script_name(r.format)} IMAGE"))
    card = model_card(predictor, files)
    checked = [r for r in results if r.verification]
    if checked:
        card += "\n## Verification\n\n" + "".join(
            f"- {r.path.name}: {describe_verification(r.verification or {})}\n" for r in checked
        )
    (stage / CARD_FILE).write_text(card, encoding="utf-8")
