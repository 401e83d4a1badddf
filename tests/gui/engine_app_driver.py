"""Drives the real app through every step that needs a model, then reports what this process loaded.

Run by ``test_window_without_tensorflow.py`` in a fresh interpreter (the test session itself has
TensorFlow loaded by other tests). Steps: open a dataset, build the model, train, evaluate, predict
with Grad-CAM, export; then it prints one JSON line: whether ``tensorflow``/``keras`` are in
``sys.modules``, whether ``libtensorflow`` is mapped into this process, and what each step gave.
Usage: ``python engine_app_driver.py WORK_FOLDER``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

COLOURS = {"blue": (40, 80, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def make_data(root: Path) -> Path:
    from PIL import Image, ImageDraw

    for name, colour in COLOURS.items():
        for i in range(8):
            path = root / name / f"{name}_{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.new("RGB", (40, 36), colour)
            ImageDraw.Draw(img).rectangle([i * 3, i * 2, i * 3 + 5, i * 2 + 5], fill=(255, 255, 255))
            img.save(path)
    return root


def wait(app, condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.005)


def tensorflow_mapped() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libtensorflow" in line for line in maps)
    except OSError:
        return False


def drive(work: Path) -> dict:
    from tlstudio.app import make_application

    app = make_application([])
    from tlstudio.core.data.scan import scan_dataset
    from tlstudio.gui.dialogs.export import ExportDialog
    from tlstudio.gui.main_window import MainWindow

    report: dict = {}
    window = MainWindow()
    window.show()
    window.start_background_loading()
    state = window.state
    data = make_data(work / "data")
    state.set_scan(scan_dataset(data))
    state.update_train_config(base="MobileNet", alpha=0.25, input_size=64, weights="imagenet", head_epochs=2,
                              fine_tune_epochs=0, batch_size=8, early_stopping=False)
    wait(app, lambda: window.engine_state == "ready", 300, "the engine")
    from tlstudio.workers.engine_calls import current_engine

    engine_pid = current_engine().pid
    report["engine_pid"] = engine_pid

    model = window.go_to("model")
    model.build_model()
    wait(app, lambda: state.layer_tree is not None and not model.is_building(), 300, "the model build")
    report["layers"] = sum(1 for _ in state.layer_tree.root.leaves())

    train = window.go_to("train")
    assert train.start_training(), "training did not start"
    wait(app, lambda: not state.training and train.last_result is not None, 600, "the training")
    run_dir = str(train.last_result.run_dir)
    report["train_status"] = train.last_result.status

    evaluate = window.go_to("evaluate")
    wait(app, lambda: bool(evaluate.confusion.model.matrix), 60, "the evaluation")
    report["confusion"] = evaluate.confusion.model.matrix

    test = window.go_to("test")
    test.set_model_source(run_dir)
    test.add_images([data / "red" / "red_00.png", data / "blue" / "blue_01.png"])
    cards = test.card_list()
    wait(app, lambda: all(c.prediction is not None for c in cards), 300, "the predictions")
    test.gradcam_all.setChecked(True)
    wait(app, lambda: all(c.showing_gradcam() for c in cards), 300, "Grad-CAM")
    report["predictions"] = [c.top_labels()[0][0] for c in cards]

    dialog = ExportDialog(state, window, run_dir=run_dir)
    dialog.show()
    dialog.set_destination(work / "export")
    dialog.set_formats(["keras"])
    dialog.start_export()
    wait(app, lambda: dialog.finished_state() is not None and not dialog.is_running(), 600, "the export")
    report["export"] = dialog.finished_state()
    report["exported"] = (work / "export" / "model.keras").is_file()
    dialog.close()

    report["tensorflow"] = "tensorflow" in sys.modules
    report["keras"] = "keras" in sys.modules
    report["libtensorflow"] = tensorflow_mapped()
    state.dirty = False
    window.close()  # stops the engine and its children
    app.processEvents()
    from tlstudio.engine.processes import is_running

    report["engine_left_running"] = is_running(engine_pid)
    return report


if __name__ == "__main__":
    print(json.dumps(drive(Path(sys.argv[1]))), flush=True)
