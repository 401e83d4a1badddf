"""New dataset dialog: makes a folder per class; a bad name or an existing folder is said in the dialog."""

from __future__ import annotations

from tlstudio.gui.dialogs.new_dataset import NewDatasetDialog


def test_creates_the_folders(qtbot, tmp_path):
    dialog = NewDatasetDialog(location=tmp_path)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("fruit")
    dialog.classes.item(0).setText("apples")
    dialog.classes.item(1).setText("pears")
    dialog._add_row("plums")
    dialog.accept()
    assert dialog.created == tmp_path / "fruit"
    assert sorted(p.name for p in dialog.created.iterdir()) == ["apples", "pears", "plums"]
    assert dialog.result() == NewDatasetDialog.DialogCode.Accepted


def test_refuses_an_existing_folder_and_bad_class_names(qtbot, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("mine")
    dialog = NewDatasetDialog(location=tmp_path)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("taken")
    dialog.accept()
    assert dialog.created is None and "already exists" in dialog.error.messages[0]
    assert (tmp_path / "taken" / "file.txt").read_text() == "mine"
    dialog.name_edit.setText("fresh")
    dialog.classes.item(0).setText("a/b")
    dialog.accept()
    assert dialog.created is None and "cannot be a class name" in dialog.error.messages[0]
    assert not (tmp_path / "fresh").exists()
