"""The question after a model file was opened: what it is, and test it or train on top of it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget


def ask_model_action(parent: QWidget | None, info) -> str:
    """Show the facts of a :class:`~tlstudio.workers.model_worker.ModelFileInfo`; "test", "base" or "" (closed)."""
    labels = "none found"
    if info.labels:
        labels = ", ".join(info.labels[:12]) + (" ..." if len(info.labels) > 12 else "")
    notes = "".join(f"<li>{n}</li>" for n in info.notes)
    box = QMessageBox(parent)
    box.setWindowTitle("Model opened")
    box.setIcon(QMessageBox.Icon.Information)
    box.setText(f"<b>{Path(info.path).name}</b>")
    box.setInformativeText(
        f"Made with: <b>{info.source_label}</b><br>"
        f"Input: {info.input_size[0]} x {info.input_size[1]} pixels<br>"
        f"Classes: {info.num_outputs if info.num_outputs is not None else '?'} (labels: {labels})<br>"
        f"Parameters: {info.params:,}"
        + (f"<ul>{notes}</ul>" if notes else "")
    )
    test = box.addButton("Test it", QMessageBox.ButtonRole.AcceptRole)
    base = box.addButton("Train on top of it", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    box.exec()
    clicked = box.clickedButton()
    return "test" if clicked is test else "base" if clicked is base else ""
