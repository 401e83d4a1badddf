"""The Data page's editing bar: pictures dropped or pasted into a class, class add/rename/remove, all undoable."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QInputDialog, QMessageBox

from tlstudio.core.data import curate
from tlstudio.gui import curation
from tlstudio.gui.curation import DatasetEditor
from tlstudio.gui.widgets.dataset_tools import DatasetTools


def _tools(qtbot, root, selected="cats"):
    editor = DatasetEditor()
    tools = DatasetTools(editor, lambda: selected)
    qtbot.addWidget(tools)
    tools.set_root(root)
    return tools, editor


def test_dropped_files_and_pasted_image_data_land_in_the_class(qtbot, tmp_path, make_image):
    root = curate.new_dataset(tmp_path / "pets", ["cats", "dogs"])
    tools, editor = _tools(qtbot, root)
    outside = [make_image(tmp_path / "in" / f"x{i}.png", pattern=i) for i in range(2)]
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in outside] + [QUrl.fromLocalFile(str(tmp_path / "in" / "notes.txt"))])
    assert tools.add_from_mime(mime) == 2
    assert sorted(p.name for p in (root / "cats").iterdir()) == ["x0.png", "x1.png"]
    assert all(p.exists() for p in outside)  # copied, not moved
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(QColor(10, 200, 30))
    pasted = QMimeData()
    pasted.setImageData(image)
    assert tools.add_from_mime(pasted, "dogs") == 1
    (jpg,) = list((root / "dogs").iterdir())
    assert jpg.name.startswith("pasted_") and jpg.suffix == ".jpg"
    assert editor.undo_text() == "added 1 image(s) into dogs"
    editor.undo()
    editor.undo()
    assert list((root / "cats").iterdir()) == [] and list((root / "dogs").iterdir()) == []


def test_class_add_rename_remove(qtbot, tmp_path, make_image, monkeypatch, dialogs):
    root = curate.new_dataset(tmp_path / "pets", ["cats", "dogs"])
    make_image(root / "cats" / "a.png")
    tools, editor = _tools(qtbot, root)
    monkeypatch.setattr(curation, "ask_new_class", lambda parent: "birds")
    monkeypatch.setattr("tlstudio.gui.widgets.dataset_tools.ask_new_class", lambda parent: "birds")
    tools.add_class()
    assert (root / "birds").is_dir()
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("felines", True)))
    tools.rename_class()
    assert (root / "felines" / "a.png").is_file() and not (root / "cats").exists()
    tools.current_class = lambda: "felines"
    dialogs.answers.append(QMessageBox.StandardButton.Yes)
    tools.remove_class()
    assert not (root / "felines").exists()
    assert (curate.excluded_dir(root) / "felines" / "a.png").is_file()
    editor.undo()
    assert (root / "felines" / "a.png").is_file()
