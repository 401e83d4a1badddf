"""Take the README's screenshots from the real app, offscreen, on the shipped sample dataset.

    .venv/bin/python docs/make_screenshots.py                 # -> docs/images/*.png
    .venv/bin/python docs/make_screenshots.py --out DIR --quick

It opens the main window, presses "Try a sample", lets the Model page build the default model,
trains through the Train page (its own worker), opens the Evaluate page with a confusion-matrix
cell selected, predicts a few photos with Grad-CAM on the Test page, exports the model through the
Export dialog, and shows the Runs view. Settings, runs and the Keras cache go to a temporary
folder, so nothing of the user's is read or changed. Then it renders every page at the smallest window,
1024x700 and 1920x1080 into ``OUT/sizes/`` and fails when a widget is drawn over another or a text is cut
(:mod:`tlstudio.gui.layout_check`). ``--quick`` trains fewer epochs, runs one training instead of two,
exports only the .keras file, unchecked, and skips the sizes (for the test suite).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SHOTS = (
    "01-welcome", "02-data", "03-model", "04-train", "05-evaluate", "06-test", "07-export", "08-runs",
    "09-audit",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "images", help="folder for the PNG files")
    parser.add_argument("--quick", action="store_true", help="a shorter run for tests")
    parser.add_argument("--size", default="1200x800", help="window size WIDTHxHEIGHT (default 1200x800, the app's own)")
    parser.add_argument("--home", type=Path, help="keep settings, runs and caches in this folder (default: a temporary one)")
    return parser.parse_args(argv)


def isolate(home: Path) -> None:
    """Settings, runs, caches and Keras downloads in ``home``; Qt offscreen. Before Qt is imported."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TLSTUDIO_HOME"] = str(home / "tlstudio")
    os.environ["KERAS_HOME"] = str(home / "keras")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ["HOME"] = str(home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Tour:
    """Drives the main window through its public widgets and methods and saves screenshots."""

    def __init__(self, out: Path, quick: bool, size: tuple[int, int]) -> None:
        from PySide6.QtWidgets import QApplication

        from tlstudio.app import configure_pyqtgraph, make_application
        from tlstudio.gui.main_window import MainWindow

        self.out = out
        self.quick = quick
        self.errors: list[str] = []
        self.saved: list[Path] = []
        previous_hook = sys.excepthook

        def hook(kind, value, tb) -> None:  # an exception in a slot must fail the tour
            self.errors.append(f"{kind.__name__}: {value}")
            previous_hook(kind, value, tb)

        sys.excepthook = hook
        self.app = make_application([])
        self.qapp = QApplication
        self.window = MainWindow()
        self.window.resize(*size)
        self.window.show()
        configure_pyqtgraph()
        self.window.start_background_loading()
        self.settle(0.5)

    # --- waiting ---------------------------------------------------------------------------------

    def settle(self, seconds: float = 0.3) -> None:
        """Let queued events, layouts and repaints happen."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.qapp.processEvents()
            time.sleep(0.01)

    def wait(self, condition, what: str, timeout: float = 300.0) -> None:
        start = time.monotonic()
        while not condition():
            if self.errors:
                raise RuntimeError(f"while waiting for {what}: {self.errors[0]}")
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
            self.qapp.processEvents()
            time.sleep(0.02)
        self.settle(0.3)
        print(f"  {what}: {time.monotonic() - start:.1f} s", flush=True)

    # --- pictures --------------------------------------------------------------------------------

    def shot(self, name: str, widget=None) -> Path:
        from PIL import Image

        self.settle(0.4)
        path = self.out / f"{name}.png"
        tmp = path.with_suffix(".tmp.png")
        (widget or self.window).grab().save(str(tmp), "PNG")
        with Image.open(tmp) as img:  # 256 colours: a third of the size, no visible change on UI pictures
            palette = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            palette.save(path, optimize=True)
        tmp.unlink()
        self.saved.append(path)
        print(f"saved {path} ({path.stat().st_size // 1024} KB)", flush=True)
        return path

    # --- the steps -------------------------------------------------------------------------------

    def welcome(self) -> None:
        assert self.window.showing_welcome()
        self.shot("01-welcome")

    def data(self) -> None:
        welcome = self.window.welcome
        assert welcome.sample_path is not None, "the sample dataset is not installed"
        welcome.sample_button.click()
        page = self.window.page("data")
        self.wait(lambda: self.window.state.scan is not None and not page.is_scanning(), "scan of the sample")
        self.settle(2.0)  # thumbnails are made on a worker
        self.shot("02-data")

    def model(self) -> None:
        state = self.window.state
        self.wait(lambda: state.tf_ready, "TensorFlow", timeout=180)
        page = self.window.go_to("model")
        self.wait(lambda: state.layer_tree is not None and not page.is_building(), "the model build")
        view = page.layers.view
        view.expandToDepth(0)  # the base's blocks under the classifier
        self.shot("03-model")

    def train(self, head_epochs: int, head_lr: float | None = None, name: str | None = None) -> None:
        state = self.window.state
        page = self.window.go_to("train")
        state.update_train_config(head_epochs=head_epochs, **({"head_lr": head_lr} if head_lr is not None else {}))
        self.settle(0.2)
        runs_before = len(state.project.runs)
        assert page.start_training(), "the Train page refused to start"
        self.wait(lambda: not state.training and not page.is_training(), f"training {head_epochs} epochs", 600)
        if page.last_error:
            raise RuntimeError(f"training failed: {page.last_error}")
        self.wait(lambda: len(state.project.runs) > runs_before, "the run in the project")
        if name:
            state.rename_run(state.current_run, name)
        if name is None or not self.quick:
            self.settle(0.5)

    def evaluate(self) -> None:
        page = self.window.go_to("evaluate")
        self.wait(lambda: page.evaluation is not None and page.split is not None, "the evaluation")
        confusion = page.split_data().get("confusion") or []
        # A mistake is the more telling cell; the diagonal when there is none.
        cells = [(t, p) for t, row in enumerate(confusion) for p, n in enumerate(row) if t != p and n]
        true_index, pred_index = max(cells, key=lambda c: confusion[c[0]][c[1]]) if cells else (0, 0)
        page.confusion.select_cell(true_index, pred_index)
        self.settle(2.0)  # gallery thumbnails
        self.shot("05-evaluate")

    def test(self) -> None:
        from tlstudio.resources import sample_dataset

        page = self.window.go_to("test")
        sample = sample_dataset()
        images = [sample / "one" / "IMG_4224.JPG", sample / "two" / "IMG_4225.JPG", sample / "three" / "IMG_4226.JPG"]
        page.gradcam_all.setChecked(True)
        page.add_images(images)
        self.wait(lambda: len(page.card_list()) == 3 and all(c.top_labels() for c in page.card_list()),
                  "predictions")
        self.wait(lambda: all(c.has_gradcam() for c in page.card_list()), "Grad-CAM")
        self.shot("06-test")

    def export(self, verify: bool) -> None:
        from tlstudio.gui.dialogs.export import ExportDialog

        dialog = ExportDialog(self.window.state, self.window, run_dir=self.window.state.current_run)
        dialog.set_formats(["keras", "tflite", "tflite-f16"] if not self.quick else ["keras"])
        dialog.set_destination(Path(self.window.state.current_run) / "export")
        dialog.verify_box.setChecked(verify)
        dialog.show()
        self.settle(0.3)
        dialog.start_export()
        self.wait(lambda: dialog.finished_state() is not None, "the export", 600)
        if dialog.finished_state() != "finished":
            raise RuntimeError(f"export ended {dialog.finished_state()}: {dialog.status_label.text()}")
        failed = [f"{o.fmt}: {o.error}" for o in dialog.outcomes if o.error]
        if failed:
            raise RuntimeError(f"export of {'; '.join(failed)}")
        dialog.resize(max(dialog.width(), 940), max(dialog.height(), 600))
        self.shot("07-export", dialog)
        dialog.close()
        self.settle(0.2)

    def runs(self) -> None:
        page = self.window.go_to("runs")
        page.refresh()
        page.select_runs([r.run_dir for r in self.window.state.project.runs])
        self.shot("08-runs")

    def audit(self) -> None:
        page = self.window.go_to("data")
        page.dataset_tools.audit_button.click()  # Find problems...: the features are cached by training
        dialog = page._audit_dialog
        self.wait(lambda: dialog.outcome is not None or bool(dialog.error.messages), "the dataset audit")
        if dialog.error.messages:
            raise RuntimeError(f"the audit failed: {dialog.error.messages[0]}")
        dialog.resize(self.window.size())
        dialog.tabs.setCurrentIndex(2)  # the map
        report = dialog.outcome.report
        suspects = {s.path for s in report.suspects}
        row = next((i for i, p in enumerate(report.paths) if p in suspects), 0)
        dialog.map.select_paths([dialog.map.paths[row]])
        dialog.map.show_preview(row)
        self.settle(1.0)
        self.shot("09-audit", dialog)
        dialog.close()

    def sizes(self) -> list[str]:
        """Every page at the smallest window, 1024x700 and 1920x1080, into ``sizes/``; what looks broken."""
        from tlstudio.gui import layout_check
        from tlstudio.gui.main_window import PAGES

        smallest = (self.window.minimumSize().width(), self.window.minimumSize().height())
        folder = self.out / "sizes"
        folder.mkdir(exist_ok=True)
        problems = []
        for width, height in dict.fromkeys([smallest, *layout_check.SIZES]):
            self.window.resize(width, height)
            for key in PAGES:
                self.window.go_to(key)
                self.settle(0.2)
                problems += [f"{key} at {width}x{height}: {p}" for p in layout_check.problems(self.window)]
                self.window.grab().save(str(folder / f"{key}-{width}x{height}.png"))
        for p in problems:
            print(f"layout: {p}", flush=True)
        return problems

    def close(self) -> None:
        self.window.state.dirty = False  # nothing to ask about: the project lives in a temporary folder
        self.window.close()
        self.settle(0.2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tlstudio-shots-") as tmp:
        home = args.home.resolve() if args.home else Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        isolate(home)
        tour = Tour(out, args.quick, (width, height))
        try:
            tour.welcome()
            tour.data()
            tour.model()
            if args.quick:
                tour.train(head_epochs=3, head_lr=1e-2, name="sample")
            else:
                # Two runs to compare in the Runs view: the default (automatic) settings, then a learning
                # rate fixed at 0.01; the second is the one shown on the next pages.
                tour.train(head_epochs=10, name="automatic")
                tour.train(head_epochs=10, head_lr=1e-2, name="lr 0.01")
            tour.shot("04-train")
            tour.evaluate()
            tour.test()
            tour.export(verify=not args.quick)
            tour.runs()
            tour.audit()
            if not args.quick:
                tour.errors += tour.sizes()
        finally:
            tour.close()
    missing = [name for name in SHOTS if not (out / f"{name}.png").is_file()]
    if tour.errors or missing:
        print(f"make_screenshots: failed: {tour.errors or missing}", file=sys.stderr)
        return 1
    print(f"{len(tour.saved)} screenshots in {out} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
