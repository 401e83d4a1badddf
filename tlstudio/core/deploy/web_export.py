"""Export for the web: a folder that classifies images in any browser, offline, from a static server.

::

    OUT/
      index.html  app.js  preprocess.js   the demo page: choose, drop or film an image, see the top classes
      model.onnx                          the model (the ONNX export), run by ONNX Runtime Web
      model.json                          labels, input size, resize policy, "not sure" threshold, ...
      labels.txt  model_card.md
      runtime/                            ONNX Runtime Web's JavaScript and WebAssembly (MIT), no CDN

Why ONNX Runtime Web and not TensorFlow.js: the ``tensorflowjs`` converter cannot be installed beside
TensorFlow 2.21 and Keras 3 (its dependency ``tensorflow-decision-forests`` pins TensorFlow 2.16 or
older; pip falls back to tensorflowjs 3.18 from 2022), while the ONNX file comes from the export
tlstudio already makes and ONNX Runtime Web runs every ONNX operator on its WebAssembly CPU backend.
The runtime files ship inside the package (``tlstudio/resources/web/runtime``), so exporting needs
no network.

The page decodes a photo as the app does and resizes it with a JavaScript copy of Pillow's
bilinear resampler (``preprocess.js``), so it sees the same pixels as the app and gives the same
answer. ``verify=True`` proves it in headless Chromium (:mod:`tlstudio.core.deploy.web_verify`).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio import __version__
from tlstudio.core.deploy import export as core_export
from tlstudio.core.deploy.formats import first_line
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.json_file import read_json

FORMAT = "web"
MODEL_NAME = "model.onnx"
METADATA_NAME = "model.json"
#: ``model.json`` "format": marks a folder as a tlstudio web export (which a new export may replace).
MARKER = "tlstudio-web"
PAGE_FILES = ("index.html", "app.js", "preprocess.js")
RUNTIME_DIR = "runtime"
RUNTIME_FILES = ("ort.wasm.bundle.min.js", "ort-wasm-simd-threaded.wasm", "LICENSE.txt")
RUNTIME_VERSION = "1.30.0"
INSTALL_WEB = 'pip install "tlstudio[web]"'
WEB_RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "web"


def require_web(verify: bool = False) -> None:
    """Raise :class:`~tlstudio.core.deploy.export.MissingDependency` unless a web export can be made.

    It needs tf2onnx and onnx (the ``web`` extra), the runtime files shipped in the package and,
    with ``verify``, Playwright and a Chromium browser.
    """
    missing = []
    for name in ("tf2onnx", "onnx"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise core_export.MissingDependency(
            f"web export needs the optional package{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            f"install them with  {INSTALL_WEB}"
        )
    absent = [name for name in (*PAGE_FILES, *(f"{RUNTIME_DIR}/{f}" for f in RUNTIME_FILES))
              if not (WEB_RESOURCES / name).is_file()]
    if absent:
        raise core_export.MissingDependency(
            f"this tlstudio installation lacks the web page files ({', '.join(absent)}); reinstall tlstudio"
        )
    if verify:
        from tlstudio.core.deploy.web_verify import require_browser

        require_browser()


def resolve_web_target(out_path: str | os.PathLike[str]) -> Path:
    """The folder to write: ``out_path`` itself when new or empty, else ``out_path/web`` when that is.

    Nothing is ever replaced, an earlier web export included: a folder holding anything gets a new
    ``web`` folder inside, and when that exists too the export is refused.
    """
    path = Path(os.fspath(out_path)).expanduser()
    if path.is_file():
        raise core_export.ExportError(f"{path} is a file; a web export is a folder")
    if path.is_dir() and any(path.iterdir()):
        path = path / core_export.DEFAULT_NAMES.get(FORMAT, FORMAT)
        if path.exists() or path.is_symlink():
            what = "an earlier web export" if is_web_export(path) else "something else"
            raise core_export.ExportError(
                f"{path} already exists ({what}); tlstudio never replaces it: choose another folder"
            )
    return path


def is_web_export(folder: Path) -> bool:
    """Whether ``folder`` was written by a web export (so a new one may replace it)."""
    try:
        data = read_json(folder / METADATA_NAME)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == MARKER


def read_threshold(predictor: Any) -> float | None:
    """The run's "not sure" threshold (``run.json``), or None for a bare model or a run without one."""
    run_dir = getattr(predictor, "run_dir", None)
    if run_dir is None:
        return None
    from tlstudio.core.run_folder import RunError, load_run

    try:
        summary = load_run(run_dir).summary
    except (RunError, TlstudioError, ValueError, TypeError):
        return None
    for key in ("threshold", "not_sure_threshold"):
        value = summary.get(key)
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
            return float(value)
    return None


@functools.cache
def pillow_resizes_vertical_first() -> bool:
    """Whether this Pillow runs its vertical pass first when the height shrinks most (Pillow 13 does).

    The order of the two passes changes a few pixel values by one; the page follows the Pillow
    the app uses. Probed on a small random image rather than read from a version number.
    """
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (301, 97, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    bilinear = Image.Resampling.BILINEAR
    once = np.asarray(image.resize((32, 32), bilinear))
    vertical_first = np.asarray(image.resize((97, 32), bilinear).resize((32, 32), bilinear))
    horizontal_first = np.asarray(image.resize((32, 301), bilinear).resize((32, 32), bilinear))
    return bool(np.array_equal(once, vertical_first) and not np.array_equal(once, horizontal_first))


def page_metadata(predictor: Any, threshold: float | None) -> dict[str, Any]:
    """What ``model.json`` tells the page: labels, input size, resize policy, threshold, versions."""
    run_dir = getattr(predictor, "run_dir", None)
    title = f"{Path(run_dir).name}: " if run_dir else ""
    return {
        "format": MARKER,
        "schema_version": 1,
        "title": title + " / ".join(predictor.labels[:6]) + (" / …" if len(predictor.labels) > 6 else ""),
        "model": MODEL_NAME,
        "labels": list(predictor.labels),
        "input_size": list(predictor.input_size),
        "input": "float32 NHWC raw RGB 0-255 (the model scales its own input)",
        "resize_policy": predictor.resize_policy,
        "pillow_vertical_first": pillow_resizes_vertical_first(),
        "threshold": threshold,
        "runtime": "onnxruntime-web",
        "runtime_version": RUNTIME_VERSION,
        "tlstudio_version": __version__,
    }


def write_web_folder(predictor: Any, folder: Path, threshold: float | None) -> None:
    """Write the model, page, runtime, ``model.json`` and ``labels.txt`` into ``folder`` (which exists)."""
    from tlstudio.core.deploy.formats import _export_onnx

    _export_onnx(predictor.model, folder / MODEL_NAME)
    for name in PAGE_FILES:
        shutil.copyfile(WEB_RESOURCES / name, folder / name)
    (folder / RUNTIME_DIR).mkdir()
    for name in RUNTIME_FILES:
        shutil.copyfile(WEB_RESOURCES / RUNTIME_DIR / name, folder / RUNTIME_DIR / name)
    metadata = page_metadata(predictor, threshold)
    (folder / METADATA_NAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in predictor.labels), encoding="utf-8")


def _write_card(predictor: Any, folder: Path, threshold: float | None, verification: dict[str, Any] | None) -> None:
    from tlstudio.core.deploy.model_card import model_card

    files = [
        ("index.html", "the demo page: serve this folder (python -m http.server) and open it"),
        (MODEL_NAME, "the model in ONNX, run in the browser by ONNX Runtime Web"),
        (METADATA_NAME, "labels, input size, resize policy and threshold, read by the page"),
        ("app.js, preprocess.js", "the page's code; preprocess.js resizes images exactly as tlstudio does"),
        (f"{RUNTIME_DIR}/", f"ONNX Runtime Web {RUNTIME_VERSION} (MIT licence), so the page needs no network"),
    ]
    card = model_card(predictor, files)
    card += "\n## In the browser\n\n"
    card += (
        "Serve the folder with any static web server and open the page, e.g. `python -m http.server 8000` "
        "here, then http://localhost:8000. Opening index.html straight from the disk does not work: "
        "browsers do not load WebAssembly from file:// pages. Choose or drop an image, or use the webcam "
        "(browsers allow it on localhost and https). Nothing is uploaded.\n"
    )
    if threshold is not None:
        card += f"\nBelow a top probability of {threshold:.0%} the page answers \"not sure\".\n"
    if verification:
        card += "\n## Verification\n\n" + f"- web page in headless Chromium: {core_export.describe_verification(verification)}\n"
    (folder / "model_card.md").write_text(card, encoding="utf-8")


def export_web(
    source: Any,
    out_path: str | os.PathLike[str],
    *,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    images: Iterable[str | os.PathLike[str]] | None = None,
    status: Callable[[str], None] | None = None,
) -> core_export.ExportResult:
    """Write a web export folder; see the module docstring for its content.

    Parameters
    ----------
    source
        A run folder, a ``.keras`` / ``.h5`` model file, or a :class:`~tlstudio.core.deploy.predict.Predictor`.
    out_path
        The folder to write (see :func:`resolve_web_target`).
    verify
        Open the page in headless Chromium, classify validation images (or ``images``) through it and
        compare with the Keras model; a difference beyond the ``web`` tolerance, or a request the
        page makes outside its folder, fails the export.
    progress, cancel, status
        As for :func:`~tlstudio.core.deploy.export.export_model`.
    images
        Images or folders to verify on instead of the run's validation images.

    Returns
    -------
    ExportResult
        ``path`` is the folder; ``files`` starts with the folder and its total size.

    Raises
    ------
    ExportError
        With the reason; nothing is left at the target. ``MissingDependency`` when tf2onnx / onnx,
        or for ``verify`` Playwright or Chromium, are missing; ``VerificationError`` when the page
        disagrees with the Keras model.
    """
    require_web(verify=verify)
    total = 4 if verify else 3
    step = core_export.step_reporter(total, cancel, status, progress)

    step("Loading the model")
    predictor = core_export._as_predictor(source)
    target = resolve_web_target(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".tlstudio-export-", suffix=".tmp", dir=target.parent))
    result = core_export.ExportResult(FORMAT, target)
    try:
        staged = stage / target.name
        staged.mkdir()
        threshold = write_web_into(predictor, staged, verify=verify, images=images, cancel=cancel, step=step, result=result)
        if cancel is not None and cancel.is_set():
            raise Cancelled("Export cancelled.")
        if target.is_dir():
            target.rmdir()  # empty (resolve_web_target made sure): the staged folder takes its place
        core_export._place(staged, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    names = ["index.html", MODEL_NAME, METADATA_NAME, "labels.txt", "model_card.md", RUNTIME_DIR]
    result.files = [(target, core_export._size(target))] + [(target / n, core_export._size(target / n)) for n in names]
    if threshold is not None:
        result.notes.append(f'"not sure" below {threshold:.0%}')
    result.notes.append(f"to open the page: python -m http.server -d {target}  then http://localhost:8000")
    if progress:
        progress(total, total)
    return result


def write_web_into(
    predictor: Any,
    staged: Path,
    *,
    verify: bool,
    images: Iterable[str | os.PathLike[str]] | None,
    cancel: threading.Event | None,
    step: Callable[[str], None],
    result: Any,
) -> float | None:
    """Fill the (existing, empty) folder ``staged`` with the page, model and card; verify when asked.

    The export loop of :mod:`tlstudio.core.deploy.export` calls it for a web folder beside other
    formats; :func:`export_web` for a web export on its own. Sets ``result.verification`` and
    returns the "not sure" threshold written into the page (None without one).
    """
    threshold = read_threshold(predictor)
    step("Writing the web page and the ONNX model")
    try:
        write_web_folder(predictor, staged, threshold)
    except TlstudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - converters raise anything; the user gets one line
        raise core_export.ExportError(f"web export failed: {first_line(exc)}") from exc
    if verify:
        step("Checking the page in headless Chromium")
        from tlstudio.core.deploy.web_verify import verify_web

        result.verification = verify_web(predictor, staged, images=images, cancel=cancel)
        if not result.verification["ok"]:
            raise core_export.VerificationError(
                f"the web page does not give the Keras model's answers "
                f"({core_export.describe_verification(result.verification)}); nothing was written"
            )
    step("Writing the model card")
    _write_card(predictor, staged, threshold, result.verification)
    return threshold
