"""The Evaluate page on a hand-made run folder (no training needed)."""

from __future__ import annotations

import json
import os

import pytest
from PySide6.QtCore import Qt

from tlstudio.core.project import RunRecord
from tlstudio.gui.pages.evaluate import EvaluatePage, one_class_warning
from tlstudio.gui.state import AppState

CLASSES = ["ants", "bees", "wasps"]


def _split(samples, classes=CLASSES):
    n = len(classes)
    confusion = [[0] * n for _ in range(n)]
    for s in samples:
        confusion[s["true"]][s["pred"]] += 1
    correct = sum(confusion[i][i] for i in range(n))
    per_class = {}
    for i, name in enumerate(classes):
        tp = confusion[i][i]
        col = sum(confusion[r][i] for r in range(n))
        row = sum(confusion[i])
        p = tp / col if col else 0.0
        r = tp / row if row else 0.0
        per_class[name] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": row}
    return {
        "accuracy": correct / len(samples),
        "loss": 0.5,
        "per_class": per_class,
        "macro_f1": sum(v["f1"] for v in per_class.values()) / n,
        "confusion": confusion,
        "samples": samples,
        "top_losses": sorted(samples, key=lambda s: -s["loss"])[:5],
    }


@pytest.fixture
def run_folder(tmp_path, image_folder):
    """A run folder with evaluation.json whose samples point at real images."""
    data = image_folder({c: 4 for c in CLASSES}, size=(32, 32))
    # true class -> predicted class for the 4 images of each class
    plan = {0: [0, 0, 1, 2], 1: [1, 1, 1, 0], 2: [2, 1, 1, 2]}
    samples = []
    for t, preds in plan.items():
        name = CLASSES[t]
        for i, p in enumerate(preds):
            samples.append({"path": f"{name}/{name}_all_{i:03d}.png", "true": t, "pred": p,
                            "prob": 0.5 + 0.1 * i, "loss": 0.1 + (1.0 if p != t else 0.0) + 0.01 * i})
    test_samples = [s for s in samples if s["path"].endswith(("000.png", "001.png"))]
    run = tmp_path / "runs" / "run1"
    run.mkdir(parents=True)
    evaluation = {"classes": CLASSES, "data_dir": str(data),
                  "splits": {"val": _split(samples), "test": _split(test_samples)}, "warnings": []}
    (run / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"status": "finished", "base": "MobileNet", "classes": CLASSES,
                                              "epochs_run": 2}), encoding="utf-8")
    return run, data, samples


def test_clicking_a_cell_shows_exactly_its_images(qtbot, run_folder):
    run, data, samples = run_folder
    state = AppState()
    page = EvaluatePage(state)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    state.add_run(RunRecord(run_dir=str(run), name="run1", status="finished", val_accuracy=0.67))

    assert page.run_combo.count() == 1
    assert page.split_combo.isVisible() and page.split_combo.count() == 2  # val and test both exist
    from tlstudio.core.data.holdout import accuracy_interval

    low, high = accuracy_interval(7, 12)  # 7 of 12 right, with its 95 % interval
    assert page.accuracy_label.text() == (
        f"Validation accuracy: 58.3 % (95 % interval {100 * low:.1f}-{100 * high:.1f} %, 12 images)")
    # 12 validation images cannot be trusted: the page says so, in plain words.
    assert page.warning_label.isVisible() and "Only 12 validation images" in page.warning_label.text()
    if os.environ.get("TLSTUDIO_SCREENSHOTS"):
        page.grab().save(os.path.join(os.environ["TLSTUDIO_SCREENSHOTS"], "evaluate_interval.png"))
    assert page.class_table.rowCount() == 3
    assert page.class_table.item(1, 3).text() == "4"  # bees support

    # A real mouse click on cell (true wasps, predicted bees).
    rect = page.confusion.cell_rect(2, 1)
    qtbot.mouseClick(page.confusion.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.selected_cell == (2, 1)
    expected = {str(data / "wasps" / f"wasps_all_{i:03d}.png") for i in (1, 2)}
    assert set(page.cell_gallery.paths()) == expected
    assert all("wasps → bees" in c for c in page.cell_gallery.captions())
    qtbot.waitUntil(lambda: page.cell_gallery.thumbnails_done == 2, timeout=10000)

    # The diagonal cell of ants holds the two right answers.
    page.confusion.select_cell(0, 0)
    assert set(page.cell_gallery.paths()) == {str(data / "ants" / f"ants_all_{i:03d}.png") for i in (0, 1)}

    # Highest loss gallery: wrong answers first.
    assert page.loss_gallery.paths()[0].endswith(("wasps_all_002.png", "ants_all_003.png"))

    # The test split has its own matrix.
    page.split_combo.setCurrentIndex(1)
    assert page.split == "test"
    assert sum(map(sum, page.confusion.model.matrix)) == 6
    page.shutdown()


def test_one_class_warning_is_prominent(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    samples = [{"path": f"x{i}.png", "true": i % 2, "pred": 0, "prob": 0.9, "loss": 1.0} for i in range(10)]
    split = _split(samples, ["cats", "dogs"])
    (run / "evaluation.json").write_text(json.dumps({"classes": ["cats", "dogs"], "data_dir": str(tmp_path),
                                                     "splits": {"val": split}}), encoding="utf-8")
    state = AppState()
    page = EvaluatePage(state)
    qtbot.addWidget(page)
    page.show()
    state.add_run(RunRecord(run_dir=str(run)))
    assert page.warning_label.isVisible()
    assert "'cats'" in page.warning_label.text() and "100%" in page.warning_label.text()
    assert not page.split_combo.isVisible()
    assert one_class_warning(["a", "b"], [[5, 0], [0, 5]], "Validation") is None
    page.shutdown()


def test_run_without_evaluation_says_so(qtbot, tmp_path):
    state = AppState()
    page = EvaluatePage(state)
    qtbot.addWidget(page)
    assert "No trained run" in page.empty_label.text()
    (tmp_path / "cancelled-early").mkdir()
    state.add_run(RunRecord(run_dir=str(tmp_path / "cancelled-early")))
    assert "no evaluation" in page.empty_label.text()
    assert page.stack.currentIndex() == 0
    state.add_run(RunRecord(run_dir=str(tmp_path / "moved-away")))
    assert page.empty_label.text().startswith("Run folder not found")
