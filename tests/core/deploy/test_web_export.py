"""The web export: a folder with a page, the ONNX model and ONNX Runtime Web, checked in real Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support.predict_run import COLORS, trained_run, write_image

from tlstudio.cli import main
from tlstudio.core.config import TrainConfig
from tlstudio.core.deploy import export as export_mod
from tlstudio.core.deploy import web_export, web_verify
from tlstudio.core.errors import TlstudioError
from tlstudio.core.run_folder import write_run_config, write_summary

HAVE_BROWSER = web_verify.find_browser() is not None
try:
    import playwright.sync_api  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False
needs_browser = pytest.mark.skipif(
    not (HAVE_BROWSER and HAVE_PLAYWRIGHT), reason="needs Chromium (apt-get install chromium) and Playwright"
)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from tlstudio.core.deploy.predict import Predictor

    return Predictor.from_path(trained_run(tmp_path_factory))


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc), to prove the browser and its driver are gone."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


# --- without TensorFlow -----------------------------------------------------------------------------


def test_web_is_a_format_with_a_folder_target(tmp_path):
    assert "web" in export_mod.FORMATS and export_mod.check_format("WEB") == "web"
    assert web_export.resolve_web_target(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert web_export.resolve_web_target(tmp_path / "empty") == tmp_path / "empty"
    # A folder holding the user's files gets a "web" folder inside: nothing of theirs is replaced.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert web_export.resolve_web_target(tmp_path / "mine") == tmp_path / "mine" / "web"
    (tmp_path / "mine" / "web").mkdir()
    (tmp_path / "mine" / "web" / "index.html").write_text("someone else's page")
    with pytest.raises(TlstudioError, match="something else"):
        web_export.resolve_web_target(tmp_path / "mine")
    # An earlier web export is never replaced either.
    (tmp_path / "old" / "web").mkdir(parents=True)
    (tmp_path / "old" / "model.json").write_text(json.dumps({"format": web_export.MARKER}))
    (tmp_path / "old" / "web" / "model.json").write_text(json.dumps({"format": web_export.MARKER}))
    with pytest.raises(TlstudioError, match="an earlier web export"):
        web_export.resolve_web_target(tmp_path / "old")
    with pytest.raises(TlstudioError, match="is a file"):
        web_export.resolve_web_target(tmp_path / "mine" / "notes.txt")


def test_threshold_is_read_from_the_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run, TrainConfig(data_dir=str(tmp_path)), ["a", "b"], {})

    class Fake:
        run_dir = run

    write_summary(run, {"status": "finished"})
    assert web_export.read_threshold(Fake()) is None
    write_summary(run, {"status": "finished", "threshold": 0.62})
    assert web_export.read_threshold(Fake()) == pytest.approx(0.62)
    write_summary(run, {"status": "finished", "threshold": 7})
    assert web_export.read_threshold(Fake()) is None


def test_verify_without_a_browser_says_so_and_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on it
    monkeypatch.setenv(web_verify.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    assert web_verify.find_browser() is None
    code = main(["export", str(tmp_path / "any-run"), "--format", "web", "--out", str(tmp_path / "out"), "--verify"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1
    assert "Chromium" in err or "Playwright" in err
    assert not (tmp_path / "out").exists()


def test_packaged_page_and_runtime_are_complete():
    for name in (*web_export.PAGE_FILES, *(f"runtime/{f}" for f in web_export.RUNTIME_FILES)):
        assert (web_export.WEB_RESOURCES / name).is_file(), name
    page = (web_export.WEB_RESOURCES / "index.html").read_text(encoding="utf-8")
    code = page + (web_export.WEB_RESOURCES / "app.js").read_text(encoding="utf-8")
    # No CDN, no absolute URL: everything the page loads comes from its own folder.
    assert "http://" not in code.replace("http://localhost:8000", "") and "https://" not in code
    assert web_export.RUNTIME_VERSION in (web_export.WEB_RESOURCES / "runtime" / "LICENSE.txt").read_text()


# --- with the tiny trained run --------------------------------------------------------------------


def test_export_writes_a_self_contained_folder(predictor, tmp_path):
    result = export_mod.export_model(predictor, "web", tmp_path / "site")
    folder = tmp_path / "site"
    assert result.path == folder and result.files[0][0] == folder
    for name in ("index.html", "app.js", "preprocess.js", "model.onnx", "model.json", "labels.txt",
                 "model_card.md", "runtime/ort.wasm.bundle.min.js", "runtime/ort-wasm-simd-threaded.wasm"):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "model.json").read_text())
    assert meta["labels"] == predictor.labels == (folder / "labels.txt").read_text().split()
    assert meta["input_size"] == list(predictor.input_size)
    assert meta["resize_policy"] == predictor.resize_policy
    assert meta["format"] == web_export.MARKER
    assert "python -m http.server" in (folder / "model_card.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no staging folder left behind
    # Exporting again replaces the earlier export.
    export_mod.export_model(predictor, "web", folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


# --- in the real browser ----------------------------------------------------------------------------


@pytest.mark.slow
@needs_browser
def test_verified_in_headless_chromium_with_no_request_outside_the_folder(predictor, tmp_path):
    before = _children(os.getpid())
    result = export_mod.export_model(predictor, "web", tmp_path / "site", verify=True)
    v = result.verification
    assert v["ok"], v
    assert v["inputs"] == "validation images" and v["n"] >= 5
    assert v["top1_agreement"] == 1.0 and v["max_prob_diff"] <= 1e-3
    assert v["outside_requests"] == [] and v["requests"] >= 5
    assert v["max_pixel_diff"] == 0  # the page's model input is the app's, value for value
    assert "headless Chromium" in (tmp_path / "site" / "model_card.md").read_text()
    # The browser, its driver and the static server are gone.
    assert _children(os.getpid()) - before == set()

    # The request log itself: every file the page loaded lies in the export folder.
    red = write_image(tmp_path / "red.jpg", COLORS["red"], size=(90, 61))
    page = web_verify.run_page(tmp_path / "site", [red], screenshot=tmp_path / "shot.png")
    assert page.outside == [] and page.labels == ["red"]
    loaded = {u.split("/", 3)[3] for u in page.requests if u.startswith("http")}
    assert {"index.html", "app.js", "preprocess.js", "model.json", "model.onnx",
            "runtime/ort.wasm.bundle.min.js", "runtime/ort-wasm-simd-threaded.wasm"} <= loaded
    assert all((tmp_path / "site" / name).is_file() for name in loaded)
    assert (tmp_path / "shot.png").stat().st_size > 10_000


@pytest.mark.slow
@needs_browser
def test_verification_catches_wrong_preprocessing_and_outside_requests(predictor, tmp_path):
    folder = tmp_path / "site"
    export_mod.export_model(predictor, "web", folder)
    pristine = (folder / "preprocess.js").read_text()
    # Red and blue swapped while reading pixels: a red/green/blue model must notice.
    broken = pristine.replace("out[j] = rgba[i];", "out[j] = rgba[i + 2];").replace(
        "out[j + 2] = rgba[i + 2];", "out[j + 2] = rgba[i];")
    assert broken != pristine
    (folder / "preprocess.js").write_text(broken)
    v = web_verify.verify_web(predictor, folder)
    assert not v["ok"] and v["top1_agreement"] < 1.0

    (folder / "preprocess.js").write_text(pristine)
    page = (folder / "index.html").read_text()
    (folder / "index.html").write_text(page.replace("</body>", '<img src="http://127.0.0.1:9/pixel.png" alt=""></body>'))
    v = web_verify.verify_web(predictor, folder)
    assert not v["ok"] and v["outside_requests"] == ["http://127.0.0.1:9/pixel.png"]
    assert "outside its folder" in v["reason"]


@pytest.mark.slow
@needs_browser
def test_the_page_answers_not_sure_below_the_runs_threshold(predictor, tmp_path):
    folder = tmp_path / "site"
    export_mod.export_model(predictor, "web", folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["threshold"] = 1.01  # no answer is that sure
    (folder / "model.json").write_text(json.dumps(meta))
    grey = write_image(tmp_path / "grey.png", (128, 128, 128))
    page = web_verify.run_page(folder, [grey])
    assert page.labels == ["not sure"]


def test_cli_exports_web(tmp_path_factory, tmp_path, capsys):
    run = trained_run(tmp_path_factory)
    assert main(["export", str(run), "--format", "web", "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"web: {tmp_path / 'site'}") and "+ index.html" in out
    shutil.rmtree(tmp_path / "site")


@pytest.mark.slow
@needs_browser
def test_the_webcam_button_classifies_the_camera_picture(predictor, tmp_path):
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "site"
    export_mod.export_model(predictor, "web", folder)
    # Chromium's fake camera (a moving test pattern) stands in for a webcam; localhost may use it.
    flags = [*web_verify.CHROMIUM_FLAGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with web_verify.serve_folder(folder) as (base, _served), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=web_verify.find_browser(), headless=True, args=flags)
        try:
            page = browser.new_page()
            page.goto(base + "index.html")
            page.wait_for_function("() => window.tlstudioWeb.ready", timeout=120_000)
            page.click("#webcam")
            page.wait_for_function("() => document.querySelectorAll('#top li').length === 3", timeout=60_000)
            assert page.text_content("#answer") in predictor.labels
            assert page.is_visible("#video") and page.is_visible("#webcam-stop")
            page.click("#webcam-stop")
            assert page.is_hidden("#video")
        finally:
            browser.close()


def _photo_like(path: Path, size=(90, 61), orientation: int | None = None, alpha: bool = False) -> Path:
    """An asymmetric picture (so a wrong rotation or crop shows), saved as JPEG with an EXIF
    orientation, or as PNG with transparent and half-transparent parts."""
    import numpy as np
    from PIL import Image

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, ((xx // 7 + yy // 5) % 2) * 200], -1).astype(np.uint8)
    if alpha:
        a = np.where(xx < w // 3, 0, np.where(xx < 2 * w // 3, 128, 255)).astype(np.uint8)
        Image.fromarray(np.dstack([rgb, a]), "RGBA").save(path)
    else:
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        Image.fromarray(rgb, "RGB").save(path, quality=90, exif=exif)
    return path


@pytest.mark.slow
@needs_browser
def test_the_page_feeds_the_model_the_apps_pixels_for_every_resize_policy(predictor, tmp_path):
    import numpy as np

    from tlstudio.core.deploy.predict import Predictor

    files = [
        _photo_like(tmp_path / "rotated.jpg", orientation=6),
        _photo_like(tmp_path / "mirrored.jpg", size=(40, 97), orientation=2),
        _photo_like(tmp_path / "transparent.png", alpha=True),
        write_image(tmp_path / "small.png", COLORS["green"], size=(20, 17)),
    ]
    for policy in ("stretch", "crop", "pad"):
        app = Predictor(predictor.model, predictor.labels, input_size=predictor.input_size, resize_policy=policy)
        folder = tmp_path / policy
        export_mod.export_model(app, "web", folder)
        assert json.loads((folder / "model.json").read_text())["resize_policy"] == policy
        page = web_verify.run_page(folder, files)
        for path, seen in zip(files, page.pixels, strict=True):
            want = app.load_image(path).reshape(-1)
            diff = np.abs(seen.astype(int) - want.astype(int))
            assert diff.max() == 0, (policy, path.name, int((diff > 0).sum()))
        np.testing.assert_allclose(page.probabilities, app.predict_array(app.preprocess(files)[0]), atol=1e-5)


@pytest.mark.slow
@needs_browser
def test_cancel_during_the_browser_check_writes_nothing(predictor, tmp_path):
    import threading

    from tlstudio.core.errors import Cancelled

    cancel = threading.Event()

    def status(text: str) -> None:
        if "Chromium" in text:
            cancel.set()  # as the Cancel button would, once the check has started

    before = _children(os.getpid())
    with pytest.raises(Cancelled):
        export_mod.export_model(predictor, "web", tmp_path / "site", verify=True, cancel=cancel, status=status)
    assert list(tmp_path.iterdir()) == []
    assert _children(os.getpid()) - before == set()
