"""Where the base model's knowledge comes from: ImageNet, random, a weights file, or the person's own model.

Bound to ``project.train`` (``weights``, ``base_model_path``): choosing writes to the project; :meth:`load`
shows the project's values; the status line says whether the weights are here, bundled or need a download.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from tlstudio.core.models import catalogue as base_models
from tlstudio.gui import file_dialogs
from tlstudio.gui.widgets.common import icon

WEIGHTS_ICONS = {"bundled": "ready", "cached": "ready", "download": "busy", "file": "ready", "none": "warning",
                 "own-model": "ready"}


class WeightsBox(QGroupBox):
    """``WeightsBox(state)``: four choices, a file path row and a status line."""

    def __init__(self, state, parent=None) -> None:
        super().__init__("Starting knowledge", parent)
        self.setToolTip("The weights the base model starts from")
        self.state = state
        self._loading = False
        wv = QVBoxLayout(self)
        self.group = QButtonGroup(self)
        self.w_imagenet = QRadioButton("Pre-trained on ImageNet (best for few images)")
        self.w_random = QRadioButton("None: start from random (needs many images)")
        self.w_file = QRadioButton("A weights file (.h5)")
        self.w_own = QRadioButton("My own model file as the base")
        self.w_own.setToolTip("A .keras or .h5 model; its last layers are replaced by a new classifier")
        for i, b in enumerate((self.w_imagenet, self.w_random, self.w_file, self.w_own)):
            self.group.addButton(b, i)
            wv.addWidget(b)
        path_row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("No file chosen")
        self.path_edit.editingFinished.connect(self._path_edited)
        self.browse_button = QPushButton("Browse...")
        self.browse_button.clicked.connect(self._browse)
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        wv.addLayout(path_row)
        status_row = QHBoxLayout()
        self.icon = QLabel()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status_row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        status_row.addWidget(self.status, 1)
        wv.addLayout(status_row)
        self.group.idToggled.connect(self._toggled)

    def load(self) -> None:
        """Show the project's choice (no signals back)."""
        cfg = self.state.project.train
        self._loading = True
        try:
            weights = (cfg.weights or "none").strip()
            if cfg.base_model_path:
                self.w_own.setChecked(True)
                self.path_edit.setText(cfg.base_model_path or "")
            elif weights.lower() == "imagenet":
                self.w_imagenet.setChecked(True)
            elif weights.lower() in ("none", "random"):
                self.w_random.setChecked(True)
            else:
                self.w_file.setChecked(True)
                self.path_edit.setText(weights)
            self._update_path_row()
        finally:
            self._loading = False
        self.update_status()

    def _set(self, **changes) -> None:
        if not self._loading:
            self.state.update_train_config(**changes)

    def _update_path_row(self) -> None:
        needs_path = self.w_file.isChecked() or self.w_own.isChecked()
        self.path_edit.setEnabled(needs_path)
        self.browse_button.setEnabled(needs_path)
        if not needs_path:
            self.path_edit.clear()

    def update_status(self) -> None:
        try:
            status = base_models.weights_status(self.state.project.train)
        except Exception as exc:  # a status that cannot be worked out must not break the page
            self.icon.setPixmap(icon("error").pixmap(16, 16))
            self.status.setText(str(exc))
            return
        name = WEIGHTS_ICONS.get(status.kind, "pending") if status.ok else "error"
        self.icon.setPixmap(icon(name).pixmap(16, 16))
        text = status.message[:1].upper() + status.message[1:]
        if status.kind == "download":
            text += ". This needs an internet connection the first time; offline, use a weights file or the " \
                    "MobileNet shipped with tlstudio (smallest width, 128-224 px)."
        elif status.kind == "none" and status.ok:
            text += ". Without pre-training a model needs thousands of images to learn well."
        self.status.setText(text)

    def _toggled(self, button_id: int, checked: bool) -> None:
        if self._loading or not checked:
            return
        self._update_path_row()
        if button_id == 0:
            self._set(weights="imagenet", base_model_path=None, cut_layer=None)
        elif button_id == 1:
            self._set(weights="none", base_model_path=None, cut_layer=None)
        else:
            self._browse()

    def _browse(self) -> None:
        if self.w_own.isChecked():
            path = file_dialogs.open_file(self, "Choose your model", file_dialogs.MODEL_FILTER, self.path_edit.text())
        else:
            path = file_dialogs.open_file(self, "Choose a weights file", file_dialogs.WEIGHTS_FILTER,
                                          self.path_edit.text())
        if path:
            self.path_edit.setText(path)
            self._path_edited()
        elif not self.path_edit.text():
            self.load()  # nothing chosen: show the settings as they are

    def _path_edited(self) -> None:
        path = self.path_edit.text().strip()
        if self._loading or not path:
            return
        if self.w_own.isChecked():
            self._set(base_model_path=path, cut_layer=None)
        elif self.w_file.isChecked():
            self._set(weights=path, base_model_path=None, cut_layer=None)
