"""Shared fixtures: an isolated environment, image-folder factories, and a QThread leak check."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Set before anything imports Qt or TensorFlow.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The shared photo sets and weights sit beside the checkout; $TLSTUDIO_SHARED points elsewhere (worktrees).
SHARED = Path(os.environ.get("TLSTUDIO_SHARED") or REPO.parent / "shared")
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"
HYMENOPTERA = SHARED / "datasets" / "hymenoptera"
SAMPLE_SIGNS = SHARED / "datasets" / "sample-signs"

PALETTE = [(220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 200, 30), (160, 40, 200), (30, 200, 200)]


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Keras cache, tlstudio cache and app settings all live in a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    os.environ["KERAS_HOME"] = str(home / "keras")
    os.environ["TLSTUDIO_HOME"] = str(home / "tlstudio")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    yield home


def write_image(path: Path, size=(48, 40), color=(200, 30, 30), mode="RGB", fmt=None, pattern: int = 0) -> Path:
    """Write a real image file with Pillow. ``pattern`` varies the content so files differ byte-wise."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    # A small shape whose place depends on ``pattern`` keeps files distinct but the class colour dominant.
    x = (pattern * 7) % max(1, size[0] - 6)
    y = (pattern * 5) % max(1, size[1] - 6)
    draw.rectangle([x, y, x + 5, y + 5], fill=(255 - color[0], 255 - color[1], 255 - color[2]))
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt)
    return path


@pytest.fixture
def make_image():
    return write_image


@pytest.fixture
def image_folder(tmp_path):
    """Factory: ``image_folder({"cats": 6, "dogs": 6}, splits=None, size=(48, 40))`` -> root path.

    Each class gets its own dominant colour, so a tiny model can learn it in a few epochs.
    With ``splits=("train", "val")`` the counts are written under each split folder.
    """

    def make(classes: dict[str, int], splits=None, size=(48, 40), root: Path | None = None, fmt_ext=".png") -> Path:
        root = root or (tmp_path / "data")
        for ci, (name, count) in enumerate(sorted(classes.items())):
            color = PALETTE[ci % len(PALETTE)]
            for split in splits or (None,):
                folder = root / split / name if split else root / name
                for i in range(count):
                    write_image(folder / f"{name}_{split or 'all'}_{i:03d}{fmt_ext}", size=size, color=color, pattern=i)
        return root

    return make


@pytest.fixture
def shared_weights():
    if not SHARED_WEIGHTS.is_file():
        pytest.skip("../shared/weights is not present (only developers and CI have it)")
    return SHARED_WEIGHTS


@pytest.fixture
def hymenoptera():
    if not HYMENOPTERA.is_dir():
        pytest.skip("../shared/datasets/hymenoptera is not present (only developers and CI have it)")
    return HYMENOPTERA


@pytest.fixture
def sample_signs():
    if not SAMPLE_SIGNS.is_dir():
        pytest.skip("../shared/datasets/sample-signs is not present")
    return SAMPLE_SIGNS


# --- QThread leak check (fails a test that leaves a thread running, saying where it was started) ---


def _where_started(stack: list) -> str:
    """The frames of a recorded stack outside pytest and installed packages, innermost last."""
    import sysconfig

    library = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    own = [f for f in stack if not f.filename.startswith(library) and f.filename != __file__]
    frames = own[-6:] or stack[-6:]
    return "\n".join(f"    {f.filename}:{f.lineno} in {f.name}\n      {f.line}" for f in frames)


def _describe_dangling(entries: list) -> str:
    lines = [f"{len(entries)} QThread(s) still running after the test, started at:"]
    for thread, stack in entries:
        try:
            name = thread.objectName() or type(thread).__name__
        except RuntimeError:
            name = type(thread).__name__
        lines.append(f"  {name}:\n{_where_started(stack)}")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(request):
    """napari's ``_dangling_qthreads``: record where each QThread is started; fail if one outlives the test."""
    if "PySide6.QtCore" not in sys.modules and "qtbot" not in request.fixturenames:
        yield
        return
    import traceback

    from PySide6.QtCore import QThread

    original_start = QThread.start
    started: list = []

    def tracking_start(self, *args, **kwargs):
        started.append((self, traceback.extract_stack()[:-1]))
        return original_start(self, *args, **kwargs)

    QThread.start = tracking_start
    try:
        yield
    finally:
        QThread.start = original_start
    dangling = []
    for thread, stack in started:
        try:
            if thread.isRunning() and not thread.wait(5000):
                dangling.append((thread, stack))
        except RuntimeError:  # the C++ object is already gone: the thread was cleaned up
            pass
    # Collect this test's Qt wrappers now, on the GUI thread, rather than letting a later cycle
    # collection run their destructors inside some worker thread of another test. Only after tests
    # that used Qt: with TensorFlow loaded a full collection takes seconds.
    if started or "qtbot" in request.fixturenames or "qapp" in request.fixturenames:
        import gc

        gc.collect()
    if dangling:
        message = _describe_dangling(dangling)
        for thread, _ in dangling:  # stop them so the next test starts clean
            try:
                thread.quit()
                thread.wait(2000)
            except RuntimeError:
                pass
        pytest.fail(message, pytrace=False)


@pytest.fixture
def recorder(qapp):
    """Factory of GUI-thread receivers for worker signals.

    ``rec = recorder(worker.succeeded)`` collects each emission's arguments in ``rec.calls``.
    A plain lambda connected to a worker's signal would run in the worker's thread; a bound
    method of a QObject that lives in the GUI thread is called through the event loop instead,
    exactly as a widget's slot would be.
    """
    from PySide6.QtCore import QObject

    class Recorder(QObject):
        def __init__(self):
            super().__init__()
            self.calls: list[tuple] = []

        def record(self, *args):
            self.calls.append(args)

    made = []

    def make(signal):
        rec = Recorder()
        signal.connect(rec.record)
        made.append(rec)
        return rec

    return make
