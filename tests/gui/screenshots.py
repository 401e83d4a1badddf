"""Save offscreen screenshots of the welcome screen, the Dataset page and the Model page.

    python tests/gui/screenshots.py [OUT_DIR] [--dark]

A small dataset is generated (three classes of coloured pictures, a broken and an empty file)
and the Model page builds MobileNet alpha 0.25 with random weights, so no network is needed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_dataset(root: Path) -> Path:
    from PIL import Image, ImageDraw

    colours = {"apples": (200, 40, 40), "bananas": (230, 200, 40), "grapes": (110, 40, 160)}
    counts = {"apples": 60, "bananas": 45, "grapes": 9}
    for name, n in counts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = Image.new("RGB", (160, 120), (235, 235, 225))
            d = ImageDraw.Draw(img)
            x, y = 20 + (i * 13) % 70, 15 + (i * 7) % 40
            d.ellipse([x, y, x + 60, y + 55], fill=colours[name])
            img.save(folder / f"{name}_{i:03d}.jpg", quality=90)
    (root / "apples" / "half_written.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    (root / "grapes" / "empty.png").write_bytes(b"")
    return root


def wait(app, condition, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    dark = "--dark" in argv
    args = [a for a in argv if not a.startswith("--")]
    out = Path(args[0] if args else "/tmp/shots")
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="tlstudio-shots-"))
    os.environ["TLSTUDIO_HOME"] = str(home / "home")

    from PySide6.QtCore import QSettings

    from tlstudio.app import configure_pyqtgraph, make_application

    app = make_application([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(home / "settings"))
    if dark:
        from PySide6.QtGui import QColor, QPalette

        app.setStyle("Fusion")
        pal = QPalette()
        for role, colour in ((QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.WindowText, "#e8e8e8"),
                             (QPalette.ColorRole.Base, "#1f1f1f"), (QPalette.ColorRole.AlternateBase, "#2a2a2a"),
                             (QPalette.ColorRole.Text, "#e8e8e8"), (QPalette.ColorRole.Button, "#353535"),
                             (QPalette.ColorRole.ButtonText, "#e8e8e8"), (QPalette.ColorRole.Highlight, "#3d7bd9"),
                             (QPalette.ColorRole.HighlightedText, "#ffffff"),
                             (QPalette.ColorRole.PlaceholderText, "#9a9a9a")):
            pal.setColor(role, QColor(colour))
        app.setPalette(pal)
    configure_pyqtgraph()
    suffix = "-dark" if dark else ""

    from tlstudio.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 820)
    window.show()
    app.processEvents()
    window.grab().save(str(out / f"welcome{suffix}.png"))

    data = make_dataset(home / "fruit")
    window.open_dataset(data)
    page = window.page("data")
    wait(app, lambda: window.state.scan is not None, 60)
    wait(app, lambda: page.thumb_model.loaded_count() >= min(30, page.thumb_model.rowCount()), 30)
    app.processEvents()
    window.grab().save(str(out / f"dataset{suffix}.png"))
    page.tabs.setCurrentIndex(1)
    app.processEvents()
    window.grab().save(str(out / f"dataset-problems{suffix}.png"))

    window.state.update_train_config(base="MobileNet", alpha=0.25, weights="none", input_size=128,
                                     fine_tune_epochs=3)
    model = window.go_to("model")
    wait(app, lambda: window.state.layer_tree is not None, 180)
    model.layers.top_spin.setValue(2)
    model.layers.unfreeze_top()
    tree = window.state.layer_tree
    if tree is not None:
        last = tree.base.path + (tree.block_names()[-1],)
        model.layers.view.expand(model.layers.proxy.mapFromSource(model.layers.tree_model.index_of(last)))
    app.processEvents()
    window.grab().save(str(out / f"model{suffix}.png"))

    window.state.dirty = False
    window.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
