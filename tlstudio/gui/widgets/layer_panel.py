"""The Model page's layer panel: the layer tree with check boxes, a filter, presets and the totals.

It edits the pure :class:`~tlstudio.core.models.layer_tree.LayerTree` through
:class:`~tlstudio.gui.widgets.layer_tree_model.LayerTreeModel`; the page decides what an edit means for
the project (``edited`` after every change made here, ``top_blocks_chosen(n)`` after "Unfreeze top").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.config import DEFAULT_FINE_TUNE_EPOCHS
from tlstudio.gui.widgets.common import button, heading, hint
from tlstudio.gui.widgets.fields import spin_box
from tlstudio.gui.widgets.layer_tree_model import COL_NAME, COLUMNS, LayerFilterProxy, LayerTreeModel


class LayerPanel(QWidget):
    """``LayerPanel()``; :meth:`show_tree` shows a tree (None: the empty note)."""

    edited = Signal()
    top_blocks_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 0, 0, 0)
        title = QHBoxLayout()
        title.addWidget(heading("Layers", level=2))
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter layers by name or type")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter_changed)
        title.addWidget(self.filter_edit, 1)
        v.addLayout(title)
        self.tree_hint = hint("Checked layers learn from your images; the new classifier on top always does. "
                              "Ticking a block or the base ticks all of its layers.")
        self.tree_hint.setToolTip("Batch normalisation (BN) layers stay in inference mode: their statistics "
                                  "from pre-training are kept even when they are trainable.")
        v.addWidget(self.tree_hint)

        # Two short rows rather than one long one, so the panel fits beside the settings at 1024 px.
        presets, presets2 = QHBoxLayout(), QHBoxLayout()
        self.freeze_button = button("Freeze base", self.freeze_base,
                                    "Train the classifier only: fastest, and best for small datasets")
        self.top_button = button("Unfreeze top", self.unfreeze_top,
                                 "Freeze the base, then also train its top blocks (fine-tuning)")
        self.top_spin = spin_box(0, 99)
        self.top_spin.setSuffix(" blocks")
        self.from_button = button("Unfreeze from selected", self.unfreeze_from_selected,
                                  "Train the selected layer or block and everything above it")
        self.all_button = button("Unfreeze all", self.unfreeze_all)
        for w in (self.freeze_button, self.all_button, self.from_button):
            presets.addWidget(w)
        for w in (self.top_button, self.top_spin):
            presets2.addWidget(w)
        presets.addStretch(1)
        presets2.addStretch(1)
        v.addLayout(presets)
        v.addLayout(presets2)

        self.tree_model = LayerTreeModel(None, self)
        self.tree_model.trainable_changed.connect(self._edited)
        self.proxy = LayerFilterProxy(self)
        self.proxy.setSourceModel(self.tree_model)
        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.selectionModel().selectionChanged.connect(self.update_buttons)
        header = self.view.header()
        header.setStretchLastSection(True)
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(60)
        v.addWidget(self.view, 1)
        self.empty_note = hint("")
        self.empty_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        v.addWidget(self.empty_note)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        v.addWidget(self.totals)
        # What the ticks mean for the run, in words: ticked base blocks are fine-tuned after the classifier
        # has learned, and ticking them with fine-tuning off turns it on.
        self.plan_note = QLabel()
        self.plan_note.setWordWrap(True)
        v.addWidget(self.plan_note)
        self.fine_tune_epochs = 0  # the Train page's "Fine-tuning epochs" (the Model page keeps it current)
        self.empty_text = "Press Build model to see the layers and choose which ones train."
        self.update_buttons()

    @property
    def tree(self):
        return self.tree_model.tree

    def show_tree(self, tree) -> None:
        self.tree_model.set_tree(tree)
        if tree is not None:
            base_index = self.proxy.mapFromSource(self.tree_model.index_of(tree.base.path)) if tree.base.path else None
            self.view.collapseAll()
            if base_index is not None and base_index.isValid():
                self.view.expand(base_index)
            self.top_spin.setMaximum(max(1, len(tree.block_names())))
        self.update_totals()
        self.update_buttons()

    def refresh(self) -> None:
        """Show the tree's check boxes and totals again after it was changed elsewhere."""
        self.tree_model.refresh_all()
        self.update_totals()

    def _filter_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.view.expandAll()

    def _edited(self) -> None:
        self.update_totals()
        self.edited.emit()

    def set_fine_tune_epochs(self, epochs: int) -> None:
        self.fine_tune_epochs = int(epochs)
        self.update_totals()

    def tuned_blocks(self) -> int | None:
        """How many blocks of the base have a ticked layer (None: layers are ticked outside the blocks)."""
        tree = self.tree
        if tree is None or tree.base.trainable_params == 0:
            return 0
        try:
            count = sum(1 for b in tree.block_names() if tree.node(tree.base.path + (b,)).trainable_params > 0)
        except Exception:  # an own model whose blocks sit deeper: say "layers" instead of counting
            return None
        return count or None

    def plan_words(self) -> str:
        """One line: what of the base learns, and when."""
        blocks = self.tuned_blocks()
        if blocks == 0:
            return "Only the new classifier learns; the base model stays as it is."
        what = "Some layers of the base" if blocks is None else f"{blocks} block{'s' if blocks != 1 else ''} of the base"
        if self.fine_tune_epochs > 0:
            return f"{what} will be fine-tuned after the classifier is trained (up to {self.fine_tune_epochs} epochs)."
        return (f"{what} will be fine-tuned after the classifier is trained: ticking them turned fine-tuning on "
                f"(up to {DEFAULT_FINE_TUNE_EPOCHS} epochs).")

    def update_totals(self) -> None:
        tree = self.tree
        self.plan_note.setText("" if tree is None else self.plan_words())
        self.plan_note.setVisible(tree is not None)
        if tree is None:
            self.totals.setText("")
            return
        trainable, total = tree.trainable_params, tree.total_params
        self.totals.setText(f"<b>Trainable:</b> {trainable:,} parameters &nbsp;&nbsp; <b>Frozen:</b> "
                            f"{total - trainable:,} &nbsp;&nbsp; Total: {total:,}")

    def selected_node(self):
        indexes = self.view.selectionModel().selectedRows(COL_NAME)
        if not indexes:
            return None
        return self.tree_model.node(self.proxy.mapToSource(indexes[0]))

    def update_buttons(self, *_args) -> None:
        has_tree = self.tree is not None
        for b in (self.freeze_button, self.top_button, self.top_spin, self.all_button):
            b.setEnabled(has_tree)
        node = self.selected_node() if has_tree else None
        base = self.tree.base if has_tree else None
        in_base = node is not None and base is not None and node is not base and \
            node.path[:len(base.path)] == base.path
        self.from_button.setEnabled(bool(in_base))
        self.empty_note.setVisible(not has_tree)
        self.view.setVisible(has_tree)
        self.empty_note.setText(self.empty_text)

    def freeze_base(self) -> None:
        self.tree_model.apply("freeze_base")
        self.top_blocks_chosen.emit(0)

    def unfreeze_top(self) -> None:
        n = int(self.top_spin.value())
        self.tree_model.apply("unfreeze_top_blocks", n)
        self.top_blocks_chosen.emit(n)

    def unfreeze_from_selected(self) -> None:
        node = self.selected_node()
        if node is not None:
            self.tree_model.apply("unfreeze_from", node.name)

    def unfreeze_all(self) -> None:
        self.tree_model.apply("unfreeze_all")
