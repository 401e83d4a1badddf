"""Check a web export in a real browser: headless Chromium classifies images through the page itself.

The export folder is served on 127.0.0.1 (a free port) by a static server in a thread of this
process; Chromium (the system's, driven by Playwright: no browser is ever downloaded) opens
``index.html`` and is given each image through the page's own "Choose image" input, so the page's
decoding, resizing and runtime are all checked. The probabilities it shows are compared with the
Keras model's on the same files, and every request the browser made is checked to stay inside the
export folder. The browser and the server are stopped before returning.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tlstudio.core.deploy import export as core_export
from tlstudio.core.deploy import formats, verification
from tlstudio.core.errors import Cancelled

#: Environment variable naming the browser to use instead of the first one found on PATH.
BROWSER_ENV = "TLSTUDIO_CHROMIUM"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
INSTALL_BROWSER = "apt-get install chromium (or set TLSTUDIO_CHROMIUM to a Chromium or Chrome program)"
PAGE_TIMEOUT_S = 120.0


def find_browser() -> str | None:
    """The Chromium program to use: ``$TLSTUDIO_CHROMIUM``, else the first of :data:`BROWSER_NAMES` on PATH."""
    given = os.environ.get(BROWSER_ENV)
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    """The browser program; :class:`~tlstudio.core.deploy.export.MissingDependency` (one line) when it cannot run."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise core_export.MissingDependency(
            "checking a web export needs Playwright for Python: install it with  pip install \"tlstudio[web]\""
        ) from None
    browser = find_browser()
    if browser is None:
        raise core_export.MissingDependency(f"checking a web export needs a Chromium browser and none was found: {INSTALL_BROWSER}")
    return browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@contextmanager
def serve_folder(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1 on a free port; yields (base URL, list of requested paths).

    The server stops (and its port is released) when the block ends, whatever happens in it.
    """
    requests: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="tlstudio-web-verify-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class PageRun:
    """What the page did: probabilities per image, every URL the browser asked for, its errors."""

    probabilities: np.ndarray
    labels: list[str]
    pixels: list[np.ndarray] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _outside(url: str, base: str) -> bool:
    scheme = urlsplit(url).scheme
    if scheme in ("data", "blob"):
        return False
    return not url.startswith(base)


def run_page(
    folder: Path,
    files: Sequence[Path],
    *,
    screenshot: Path | None = None,
    timeout: float = PAGE_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> PageRun:
    """Open the export in ``folder`` in headless Chromium and classify ``files`` through its file input.

    Parameters
    ----------
    folder
        A web export folder.
    files
        Image files, given to the page one at a time as a person choosing them would.
    screenshot
        Where to save a PNG of the page showing the last answer.
    timeout
        Seconds allowed for loading the model and for each image.
    cancel
        Set it to stop between images (raises :class:`~tlstudio.core.errors.Cancelled`).

    Raises
    ------
    VerificationError
        When the page cannot load its model or does not answer in time.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    browser_path = require_browser()
    ms = int(timeout * 1000)
    rows: list[list[float]] = []
    labels: list[str] = []
    pixels: list[np.ndarray] = []
    with serve_folder(folder) as (base, _served):
        requested: list[str] = []
        errors: list[str] = []
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=browser_path, headless=True, args=list(CHROMIUM_FLAGS))
            except PlaywrightError as exc:
                raise core_export.VerificationError(
                    f"the browser {browser_path} could not be started: {formats.first_line(exc)}"
                ) from None
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.on("request", lambda request: requested.append(request.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                page.goto(base + "index.html")
                try:
                    page.wait_for_function("() => window.tlstudioWeb && (window.tlstudioWeb.ready || window.tlstudioWeb.error)", timeout=ms)
                except PlaywrightError:
                    raise core_export.VerificationError(
                        f"the page did not load its model within {timeout:.0f} s{_reason(errors)}"
                    ) from None
                failed = page.evaluate("() => window.tlstudioWeb.error")
                if failed:
                    raise core_export.VerificationError(f"the page could not load its model: {failed}")
                for i, path in enumerate(files, start=1):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Export cancelled.")
                    page.set_input_files("#file", str(path))
                    try:
                        page.wait_for_function(f"() => window.tlstudioWeb.count >= {i}", timeout=ms)
                    except PlaywrightError:
                        raise core_export.VerificationError(
                            f"the page gave no answer for {Path(path).name} within {timeout:.0f} s{_reason(errors)}"
                        ) from None
                    last = page.evaluate("() => window.tlstudioWeb.last")
                    if last.get("error"):
                        raise core_export.VerificationError(f"the page could not read {Path(path).name}: {last['error']}")
                    rows.append([float(p) for p in last["probabilities"]])
                    labels.append(str(last["label"]))
                    pixels.append(np.asarray(page.evaluate("() => Array.from(window.tlstudioWeb.lastPixels)"), np.uint8))
                if screenshot is not None:
                    page.screenshot(path=str(screenshot))
            finally:
                browser.close()
    outside = [url for url in requested if _outside(url, base)]
    width = len(rows[0]) if rows else 0
    return PageRun(np.asarray(rows, np.float64).reshape(len(rows), width), labels, pixels, requested, outside, errors)


def _reason(errors: list[str]) -> str:
    return f": {errors[-1]}" if errors else ""


def _random_images(folder: Path, size: tuple[int, int], n: int) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w = size
    files = []
    for i in range(n):
        pixels = rng.integers(0, 256, (h * 3 // 2 + i, w * 4 // 3 + 2 * i, 3), dtype=np.uint8)
        path = folder / f"random-{i}.png"
        Image.fromarray(pixels, "RGB").save(path)
        files.append(path)
    return files


def verify_web(
    predictor: Any,
    folder: Path,
    *,
    images: Iterable[str | os.PathLike[str]] | None = None,
    n: int = verification.VERIFY_IMAGES,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Classify images through the exported page in headless Chromium and compare with the Keras model.

    Parameters
    ----------
    predictor
        The :class:`~tlstudio.core.deploy.predict.Predictor` of the source model.
    folder
        The web export folder.
    images
        Images or folders to use; default a sample of the run's validation images, else random images.
    n
        How many images at most.
    cancel
        Set it to stop between images.

    Returns
    -------
    dict
        As :func:`~tlstudio.core.deploy.export.compare_outputs`, plus ``"inputs"``, ``"format"``,
        ``"requests"`` (how many the browser made) and ``"outside_requests"`` (URLs outside the
        folder; any of them fails the check).
    """
    files = formats.given_images(images)
    inputs = "given images"
    if not files:
        files = formats.run_split_images(predictor, ("val", "test", "train"))
        inputs = "validation images"
    files = formats.spread(files, n)
    batch, used = formats.load_batch(predictor, files)
    scratch = Path(tempfile.mkdtemp(prefix="tlstudio-web-verify-"))
    try:
        if not used:
            used = _random_images(scratch, predictor.input_size, min(n, 8))
            batch, used = formats.load_batch(predictor, used)
            inputs = "random images (no validation images were found)"
        page = run_page(folder, used, cancel=cancel)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reference = predictor.predict_array(batch)
    result = core_export.compare_outputs("web", reference, page.probabilities.astype(np.float32))
    # How far the page's model input is from the app's, pixel value by pixel value (0 when the
    # decoders agree, as libjpeg-turbo in Chromium and in Pillow do): it tells a preprocessing
    # fault from a runtime one.
    result["max_pixel_diff"] = max(
        (int(np.abs(p.astype(int) - b.reshape(-1).astype(int)).max()) for p, b in zip(page.pixels, batch, strict=True)
         if p.size == b.size),
        default=0,
    )
    if any(p.size != b.size for p, b in zip(page.pixels, batch, strict=True)):
        result["max_pixel_diff"] = 255
    result["inputs"] = inputs
    result["format"] = "web"
    result["requests"] = len(page.requests)
    result["outside_requests"] = page.outside
    if page.outside:
        result["ok"] = False
        result["reason"] = f"the page asked for {page.outside[0]}, outside its folder"
    return result
