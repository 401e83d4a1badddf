"""A Qt item model over the core :class:`~tlstudio.core.models.layer_tree.LayerTree` (an adapter, not a copy).

Every question is answered from the core tree's nodes and every edit goes through
``LayerTree.set_trainable`` or one of its presets, so the GUI, the CLI and training agree on the
frozen set. Check boxes are in the Name column; blocks and models are tri-state.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from tlstudio.gui.widgets.common import icon

COLUMNS = ("Name", "Type", "Output shape", "Parameters", "Trainable")
#: Keras class names shown in plain words (the tooltip keeps the Keras name).
PLAIN_TYPES = {"Functional": "Model", "Sequential": "Layers in a row"}
COL_NAME, COL_TYPE, COL_SHAPE, COL_PARAMS, COL_TRAINABLE = range(len(COLUMNS))

NodeRole = Qt.ItemDataRole.UserRole + 1
_TUPLE = re.compile(r"\(([^()]*)\)")


def pretty_shape(text: str) -> str:
    """``"(None, 4, 4, 256)"`` -> ``"4 \u00d7 4 \u00d7 256"``: the batch dimension left out, for people."""

    def one(match: re.Match) -> str:
        dims = [d.strip() for d in match.group(1).split(",") if d.strip()]
        if dims and dims[0] == "None":
            dims = dims[1:]
        return " \u00d7 ".join("?" if d == "None" else d for d in dims) or "-"

    return _TUPLE.sub(one, text or "")


def _check_state(value) -> Qt.CheckState:
    """A check state from whatever a view or a test passes (enum, int)."""
    if isinstance(value, Qt.CheckState):
        return value
    try:
        return Qt.CheckState(int(value))
    except (TypeError, ValueError):
        return Qt.CheckState.Checked if value else Qt.CheckState.Unchecked


class LayerTreeModel(QAbstractItemModel):
    """``LayerTreeModel(tree)``; ``trainable_changed`` is emitted after every edit."""

    trainable_changed = Signal()

    def __init__(self, tree=None, parent=None) -> None:
        super().__init__(parent)
        self.tree = None
        self._nodes: list = []  # id -> node
        self._ids: dict[tuple[str, ...], int] = {}
        self._parent: dict[tuple[str, ...], object] = {}
        self._row: dict[tuple[str, ...], int] = {}
        self.set_tree(tree)

    # --- the tree --------------------------------------------------------------------------------

    def set_tree(self, tree) -> None:
        self.beginResetModel()
        self.tree = tree
        self._nodes = []
        self._ids = {}
        self._parent = {}
        self._row = {}
        if tree is not None:
            for node in tree.root.iter_nodes():
                self._ids[node.path] = len(self._nodes)
                self._nodes.append(node)
                for row, child in enumerate(node.children):
                    self._parent[child.path] = node
                    self._row[child.path] = row
        self.endResetModel()

    def node(self, index: QModelIndex):
        """The core node of ``index`` (the root for an invalid index)."""
        if self.tree is None:
            return None
        if not index.isValid():
            return self.tree.root
        return self._nodes[index.internalId()]

    def index_of(self, path, column: int = 0) -> QModelIndex:
        """The index of the node at ``path`` (a tuple of names)."""
        path = tuple(path)
        if self.tree is None or path not in self._ids or path == ():
            return QModelIndex()
        return self.createIndex(self._row[path], column, self._ids[path])

    # --- structure -------------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self.node(parent)
        if node is None or not (0 <= row < len(node.children)) or not (0 <= column < len(COLUMNS)):
            return QModelIndex()
        child = node.children[row]
        return self.createIndex(row, column, self._ids[child.path])

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not index.isValid() or self.tree is None:
            return QModelIndex()
        node = self._nodes[index.internalId()]
        parent = self._parent.get(node.path)
        if parent is None or parent.path == ():
            return QModelIndex()
        return self.createIndex(self._row[parent.path], 0, self._ids[parent.path])

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        node = self.node(parent)
        return len(node.children) if node is not None else 0

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    # --- contents --------------------------------------------------------------------------------

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        node = self._nodes[index.internalId()]
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_NAME and not node.locked and self._editable(node):
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    @staticmethod
    def _editable(node) -> bool:
        """A node can be toggled when at least one layer under it can."""
        if node.kind == "layer":
            return not node.locked
        return any(not leaf.locked for leaf in node.leaves())

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node = self._nodes[index.internalId()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_NAME:
                return node.name
            if col == COL_TYPE:
                return PLAIN_TYPES.get(node.layer_type, node.layer_type)
            if col == COL_SHAPE:
                return pretty_shape(node.output_shape)
            if col == COL_PARAMS:
                return f"{node.params:,}" if node.params else ""
            if col == COL_TRAINABLE:
                return self._trainable_text(node)
            return None
        if role == Qt.ItemDataRole.CheckStateRole and col == COL_NAME:
            if node.locked or not self._editable(node):
                return None
            if node.trainable is None:
                return Qt.CheckState.PartiallyChecked
            return Qt.CheckState.Checked if node.trainable else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole and col == COL_NAME:
            if node.is_batchnorm:
                return icon("batchnorm")
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_PARAMS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and node.locked:
            return QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == NodeRole:
            return node
        return None

    @staticmethod
    def _trainable_text(node) -> str:
        if node.locked:
            return "fixed" if not node.is_batchnorm else "inference mode"
        if node.kind == "layer":
            if node.params == 0:
                return "-"
            return "trainable" if node.trainable else "frozen"
        if node.params == 0:
            return "-"
        if node.trainable_params == 0:
            return "frozen"
        if node.trainable is True or node.trainable_params == node.params:
            return "trainable"
        return f"{100 * node.trainable_params / node.params:.0f} %"  # partly trainable, by parameters

    @staticmethod
    def _tooltip(node) -> str:
        lines = [f"{node.name} ({node.layer_type})"]
        if node.kind != "layer":
            lines.append(f"{node.trainable_params:,} of {node.params:,} parameters trainable")
        if node.is_batchnorm:
            lines.append("BatchNormalization: " + (node.note or "stays in inference mode"))
        elif node.note:
            lines.append(node.note)
        return "\n".join(lines)

    # --- edits -----------------------------------------------------------------------------------

    def setData(self, index: QModelIndex, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not index.isValid() or self.tree is None:
            return False
        node = self._nodes[index.internalId()]
        if node.locked or not self._editable(node):
            return False
        state = _check_state(value)
        on = state != Qt.CheckState.Unchecked  # a partial click means "train all of it"
        changed = self.tree.set_trainable(node.path, on)
        self._emit_changed([node.path, *changed])
        self.trainable_changed.emit()
        return True

    def apply(self, operation, *args) -> list:
        """Run a preset on the tree (``"freeze_base"``, ``"unfreeze_top_blocks"``, ``"unfreeze_from"``,
        ``"unfreeze_all"``, ``"apply_state"``) and refresh the views; returns the changed paths."""
        if self.tree is None:
            return []
        changed = getattr(self.tree, operation)(*args)
        self.refresh_all()
        self.trainable_changed.emit()
        return changed

    def _emit_changed(self, paths) -> None:
        """dataChanged for each changed node and every ancestor (their counts change too)."""
        rows: set[tuple[str, ...]] = set()
        for path in paths:
            p = tuple(path)
            while p and p not in rows:
                rows.add(p)
                p = p[:-1]
        last = len(COLUMNS) - 1
        for p in sorted(rows, key=len):
            if p in self._ids:
                self.dataChanged.emit(self.index_of(p, 0), self.index_of(p, last))

    def refresh_all(self) -> None:
        """dataChanged over every row (one signal per parent)."""
        if self.tree is None:
            return
        last = len(COLUMNS) - 1
        for node in self.tree.root.iter_nodes():
            if node.children:
                first = self.index_of(node.children[0].path, 0)
                end = self.index_of(node.children[-1].path, last)
                self.dataChanged.emit(first, end)


class LayerFilterProxy(QSortFilterProxyModel):
    """Filters by name or type, keeping the blocks and models that hold a match."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setAutoAcceptChildRows(True)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        pattern = self.filterRegularExpression().pattern()
        if not pattern:
            return True
        model = self.sourceModel()
        for col in (COL_NAME, COL_TYPE):
            text = model.data(model.index(source_row, col, source_parent), Qt.ItemDataRole.DisplayRole) or ""
            if self.filterRegularExpression().match(str(text)).hasMatch():
                return True
        return False
