"""Start the desktop app: ``tlstudio-gui [FOLDER | --project FILE | MODEL]``.

The window is shown before anything heavy is imported; TensorFlow loads on a worker thread
right after, with its state in the status bar.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import tlstudio


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tlstudio-gui", description="tlstudio: point-and-click transfer learning")
    parser.add_argument("path", nargs="?", help="a dataset folder, a project file (.tlsproj) or a model file to open")
    parser.add_argument("--project", metavar="FILE", help="open this project file")
    parser.add_argument("--no-tensorflow", action="store_true", help=argparse.SUPPRESS)  # for start-up timing
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)  # smoke tests
    return parser.parse_args(argv)


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with names for QSettings, the icon, and pyqtgraph configured to follow the palette."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "tlstudio", *(argv or [])])
    app.setOrganizationName("tlstudio")
    app.setOrganizationDomain("tlstudio.org")
    app.setApplicationName("tlstudio")
    app.setApplicationDisplayName("tlstudio")
    app.setApplicationVersion(tlstudio.__version__)
    app.setDesktopFileName("tlstudio")
    from tlstudio.gui.widgets.common import app_icon

    app.setWindowIcon(app_icon())
    return app


def configure_pyqtgraph() -> None:
    """pyqtgraph after PySide6, with antialiasing and colours taken from the system palette.

    Called right after the window is shown (importing pyqtgraph and numpy takes about a second), and
    before any page with a plot exists: pages are created when their step is first shown.
    """
    import pyqtgraph as pg

    palette = QApplication.palette()
    pg.setConfigOptions(
        antialias=True,
        background=palette.base().color(),
        foreground=palette.text().color(),
        imageAxisOrder="row-major",
    )


def arm_smoke_test(app: QApplication, window, limit_s: float = 170.0) -> None:
    """``TLSTUDIO_SMOKE_TEST=1``: quit with 0 once the window is shown and TensorFlow has loaded.

    Quits with 1 when an exception escapes a slot, a dialog pops up (an error), or nothing is ready
    within ``limit_s`` seconds. packaging/smoke_test.sh runs the built app this way.
    """
    started = time.monotonic()
    errors: list[str] = []
    previous_hook = sys.excepthook

    def hook(kind, value, tb) -> None:
        errors.append(f"{kind.__name__}: {value}")
        previous_hook(kind, value, tb)

    sys.excepthook = hook

    def check() -> None:
        dialog = QApplication.activeModalWidget()
        problem = errors[0] if errors else None
        if problem is None and dialog is not None:
            problem = f"a dialog opened: {dialog.windowTitle()}: {getattr(dialog, 'text', lambda: '')()}"
        if problem is None and time.monotonic() - started > limit_s:
            problem = f"TensorFlow did not load within {limit_s:.0f} s"
        if problem is None and not (window.isVisible() and window.state.tf_ready):
            return
        timer.stop()
        print(f"smoke test failed: {problem}" if problem else "smoke test: window shown, TensorFlow ready", flush=True)
        if dialog is not None:
            dialog.close()
        window.close()
        app.exit(1 if problem else 0)

    timer = QTimer(window)
    timer.timeout.connect(check)
    timer.start(250)


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = make_application([])

    from tlstudio.gui.main_window import MainWindow

    window = MainWindow()
    window.show()

    def after_show() -> None:
        configure_pyqtgraph()
        if not args.no_tensorflow:
            window.start_background_loading()
        target = args.project or args.path
        if target:
            p = Path(target)
            if args.project or p.suffix == ".tlsproj":
                window.open_project(p)
            elif p.is_dir():
                window.open_dataset(p)
            elif p.suffix.lower() in (".keras", ".h5", ".hdf5"):
                window.open_model(p)
            else:
                window.state.message(f"Cannot open {target}: not a folder, a project or a model")
        else:
            window.offer_recovery()

    QTimer.singleShot(0, after_show)
    if os.environ.get("TLSTUDIO_SMOKE_TEST") == "1":
        arm_smoke_test(app, window)
    if args.quit_after is not None:
        QTimer.singleShot(args.quit_after, window.close)
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
