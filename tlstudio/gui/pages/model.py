"""The Model step: pick the base model and its weights, the head, and which layers train.

The model is built on a worker (the Keras model stays there); this page holds the pure layer tree
and edits it through :class:`~tlstudio.gui.widgets.layer_tree_model.LayerTreeModel`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.config import TrainConfig
from tlstudio.core.models import catalogue as base_models
from tlstudio.gui.state import AppState
from tlstudio.gui.widgets.catalogue_table import CatalogueTable
from tlstudio.gui.widgets.common import add_banners, button, heading, hint, share_columns
from tlstudio.gui.widgets.fields import combo_box, decimal_box, set_quietly, spin_box
from tlstudio.gui.widgets.layer_panel import LayerPanel
from tlstudio.gui.widgets.weights_box import WeightsBox
from tlstudio.workers import model_worker
from tlstudio.workers.base import WorkerHandle, create_worker, registry
from tlstudio.workers.model_worker import BuiltModel

#: Settings whose change makes a different model (and so a new layer tree).
STRUCTURE_FIELDS = ("base", "alpha", "input_size", "weights", "base_model_path", "cut_layer", "pooling",
                    "dropout", "hidden_units")
#: Settings whose change makes the saved frozen set meaningless.
LAYOUT_FIELDS = ("base", "alpha", "input_size", "base_model_path", "cut_layer")


def structure_key(config: TrainConfig) -> tuple:
    return tuple(getattr(config, f) for f in STRUCTURE_FIELDS)


def layout_key(config: TrainConfig) -> tuple:
    return tuple(getattr(config, f) for f in LAYOUT_FIELDS)


class ModelPage(QWidget):
    """``ModelPage(state, parent)``: :meth:`build_model` builds on a worker and shows the layer tree."""

    build_finished = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._loading = False
        self._handle: WorkerHandle | None = None
        self._built_key: tuple | None = None
        self._building_key: tuple | None = None
        self._layout_key: tuple = layout_key(state.project.train)
        self._default_for: tuple | None = None
        self.last_build: BuiltModel | None = None
        self.auto_build = True
        self._auto_timer = QTimer(self)
        self._auto_timer.setSingleShot(True)
        self._auto_timer.setInterval(400)
        self._auto_timer.timeout.connect(self._auto_build)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        header = QHBoxLayout()
        header.addWidget(heading("Model"))
        self.summary = QLabel()
        header.addWidget(self.summary, 1)
        self.build_button = button("Build model", self.build_model,
                                   "Build the model with these settings to see and choose its layers")
        header.addWidget(self.build_button)
        outer.addLayout(header)
        self.busy, self.error_banner, self.info_banner = add_banners(outer, self.cancel_build, "error", "info")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        outer.addWidget(splitter, 1)
        splitter.addWidget(self._make_settings_panel())
        self.layers = LayerPanel()
        self.layers.edited.connect(self._tree_edited)
        self.layers.top_blocks_chosen.connect(lambda n: self.state.update_train_config(unfreeze_top=n))
        splitter.addWidget(self.layers)
        share_columns(splitter, (2, 3), (460, 640))

        state.train_config_changed.connect(self._config_changed)
        state.project_changed.connect(self._project_changed)
        state.dataset_changed.connect(self._dataset_changed)
        state.tf_ready_changed.connect(self._update_summary)
        self._load_settings()
        self._built_key = None
        if state.layer_tree is not None:
            self._show_tree(state.layer_tree)
            self._built_key = structure_key(state.project.train)
        self._update_summary()

    # --- layout ----------------------------------------------------------------------------------

    def _make_settings_panel(self) -> QWidget:
        panel = QWidget()
        v = QVBoxLayout(panel)
        v.setContentsMargins(0, 0, 4, 0)

        base_box = QGroupBox("Base model (pre-trained feature extractor)")
        bv = QVBoxLayout(base_box)
        self.catalogue = CatalogueTable()
        self.catalogue.setMinimumHeight(170)
        self.catalogue.itemSelectionChanged.connect(self._base_selected)
        bv.addWidget(self.catalogue, 1)
        self.base_description = hint("")
        bv.addWidget(self.base_description)
        form = QFormLayout()
        self.alpha_combo = combo_box()
        self.alpha_combo.setToolTip("The width multiplier (alpha) of MobileNet: smaller is faster and smaller, "
                                    "larger is more accurate")
        self.alpha_combo.currentIndexChanged.connect(self._alpha_changed)
        self.alpha_label = QLabel("Width")
        self.alpha_label.setToolTip(self.alpha_combo.toolTip())
        form.addRow(self.alpha_label, self.alpha_combo)
        self.size_spin = spin_box(32, 1024, step=32)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Images are resized to this square size; smaller is faster, larger sees more detail")
        self.size_spin.valueChanged.connect(self._size_changed)
        form.addRow("Input size", self.size_spin)
        bv.addLayout(form)
        v.addWidget(base_box, 3)

        self.weights_box = WeightsBox(self.state)
        v.addWidget(self.weights_box)

        head_box = QGroupBox("New classifier")
        head_box.setToolTip("The classifier head: the layers added on top of the base model, trained on your classes")
        hf = QFormLayout(head_box)
        self.pooling_combo = combo_box()
        for text, value in (("Average", "avg"), ("Maximum", "max")):
            self.pooling_combo.addItem(text, value)
        self.pooling_combo.setToolTip("How the base's feature map becomes one feature vector")
        self.pooling_combo.currentIndexChanged.connect(self._head_changed)
        self.dropout_spin = decimal_box(0.0, 0.9, 0.05, auto=True)
        self.dropout_spin.setToolTip("Share of features dropped at random while training; fights overfitting.\n"
                                     "Automatic unless \"Choose dropout\" is unticked on the Train page.")
        self.dropout_spin.valueChanged.connect(self._head_changed)
        self.hidden_spin = spin_box(0, 4096, step=64)
        self.hidden_spin.setSpecialValueText("none")
        self.hidden_spin.setToolTip("An extra dense layer before the output (none = a linear classifier)")
        self.hidden_spin.valueChanged.connect(self._head_changed)
        hf.addRow("Pooling", self.pooling_combo)
        hf.addRow("Dropout", self.dropout_spin)
        hf.addRow("Hidden units", self.hidden_spin)
        v.addWidget(head_box)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The column scrolls up and down only: never narrower than its content, so no text is cut.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(panel.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        return scroll

    # --- settings <-> project --------------------------------------------------------------------

    def _load_settings(self) -> None:
        """Show the project's settings in the form (no signals back)."""
        cfg = self.state.project.train
        self._loading = True
        try:
            own = bool(cfg.base_model_path)
            try:
                spec = base_models.get_spec(cfg.base)
            except base_models.ModelError:
                spec = base_models.get_spec("MobileNet")
            self.catalogue.select_base(spec.name)
            self.catalogue.setEnabled(not own)
            # Plain words on screen: the catalogue's "alpha" is the width chosen below.
            self.base_description.setText(spec.description.replace("alpha", "width"))
            self.alpha_combo.clear()
            for a in spec.alphas:
                self.alpha_combo.addItem(f"{a:g}", a)
            alpha = base_models.resolve_alpha(spec, cfg.alpha) if spec.alphas else None
            if alpha is not None:
                self.alpha_combo.setCurrentIndex(list(spec.alphas).index(alpha))
            has_alpha = bool(spec.alphas) and not own
            self.alpha_combo.setVisible(has_alpha)
            self.alpha_label.setVisible(has_alpha)
            self.size_spin.setMinimum(spec.min_size)
            set_quietly(self.size_spin, int(cfg.input_size or spec.default_size))
            self.size_spin.setEnabled(not own)
            # A field being edited keeps what the person types (set_quietly leaves focused fields alone).
            set_quietly(self.pooling_combo, cfg.pooling)
            set_quietly(self.dropout_spin, float(cfg.dropout))
            self.dropout_spin.show_auto("Automatic" if cfg.is_auto("dropout") else "")  # each run chooses it
            self.dropout_spin.setEnabled(not cfg.is_auto("dropout"))
            set_quietly(self.hidden_spin, int(cfg.hidden_units))
            set_quietly(self.layers.top_spin, int(cfg.unfreeze_top))
            self.layers.set_fine_tune_epochs(cfg.fine_tune_epochs)  # its "will be fine-tuned" line
        finally:
            self._loading = False
        self.weights_box.load()

    def _set(self, **changes) -> None:
        if not self._loading:
            self.state.update_train_config(**changes)

    def _base_selected(self) -> None:
        if self._loading:
            return
        name = self.catalogue.chosen_base()
        if name is None or name == self.state.project.train.base:
            return
        spec = base_models.get_spec(name)
        self._set(base=name, alpha=spec.default_alpha, input_size=None)

    def _alpha_changed(self) -> None:
        if self._loading or self.alpha_combo.count() == 0:
            return
        self._set(alpha=self.alpha_combo.currentData())

    def _size_changed(self, value: int) -> None:
        if self._loading:
            return
        try:
            default = base_models.get_spec(self.state.project.train.base).default_size
        except base_models.ModelError:
            default = None
        self._set(input_size=None if value == default else int(value))

    def _head_changed(self) -> None:
        if self._loading:
            return
        self._set(pooling=self.pooling_combo.currentData(), dropout=round(self.dropout_spin.value(), 2),
                  hidden_units=int(self.hidden_spin.value()))

    # --- reacting to the state -------------------------------------------------------------------

    def _config_changed(self) -> None:
        cfg = self.state.project.train
        key = structure_key(cfg)
        if self._built_key is not None and key != self._built_key:
            self._drop_tree()
        if layout_key(cfg) != self._layout_key:
            # Another architecture: the saved frozen set names layers it does not have.
            self._layout_key = layout_key(cfg)
            if cfg.layer_state is not None:
                self.state.update_train_config(layer_state=None)  # re-enters this method; harmless
        tree = self.layers.tree
        if tree is not None and cfg.layer_state is None and self._default_for != self._default_key(cfg):
            # Nothing chosen by hand: the shown (and trained) set follows the fine-tuning settings.
            self._apply_default(tree)
            self.layers.refresh()
            self.state.model_changed.emit()
        if not self._loading:
            self._load_settings()
        self._update_summary()
        self._schedule_auto_build()

    def _project_changed(self) -> None:
        self.cancel_build(wait=True)
        self._built_key = None
        self._layout_key = layout_key(self.state.project.train)
        self.layers.show_tree(None)
        self.last_build = None
        self.error_banner.set_messages([])
        self.info_banner.set_messages([])
        self._load_settings()
        self._update_summary()
        self._schedule_auto_build()

    def _dataset_changed(self) -> None:
        # The number of classes only changes the last layer; rebuild when it differs.
        if self.last_build is not None and self.last_build.num_classes != self._num_classes():
            self._drop_tree()
            self._schedule_auto_build()
        self._update_summary()

    def _drop_tree(self) -> None:
        if self.state.layer_tree is not None:
            self.state.set_layer_tree(None)
        self.layers.show_tree(None)
        self._built_key = None
        self.last_build = None

    def _num_classes(self) -> int:
        scan = self.state.scan
        if scan is None:
            return 2
        return max(2, sum(1 for n in scan.class_counts().values() if n > 0))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._schedule_auto_build()

    def _schedule_auto_build(self) -> None:
        if not self.auto_build or not self.isVisible() or self.is_building():
            return
        if self._built_key == structure_key(self.state.project.train):
            return
        try:
            status = base_models.weights_status(self.state.project.train)
        except Exception:
            return
        if status.ok and status.kind != "download" and status.kind != "own-model":
            self._auto_timer.start()

    def _auto_build(self) -> None:
        if self.isVisible() and not self.is_building() and self._built_key != structure_key(self.state.project.train):
            self.build_model()

    # --- building --------------------------------------------------------------------------------

    def is_building(self) -> bool:
        return self._handle is not None and self._handle.is_running()

    def build_model(self) -> None:
        """Build the model for the current settings on a worker; the tree appears when it is done."""
        if self.is_building():
            self._pending_rebuild = True
            return
        self._pending_rebuild = False
        config = copy.deepcopy(self.state.project.train)
        config.layer_state = None  # applied here on the GUI side, where a mismatch can be explained
        status = base_models.weights_status(config)
        if not status.ok:
            self.error_banner.set_messages([status.message[:1].upper() + status.message[1:]])
            self.build_finished.emit("failed")
            return
        self.error_banner.set_messages([])
        if self._handle is not None:
            self._handle.detach()
        self._building_key = structure_key(self.state.project.train)
        waiting = "" if self.state.tf_ready else " (waiting for TensorFlow to load)"
        self.busy.start(f"Building {config.base if not config.base_model_path else 'your model'}...{waiting}",
                        cancellable=status.kind == "download")
        self.build_button.setEnabled(False)
        self._handle = create_worker(model_worker.build_model, config, self._num_classes(), _name="build-model", _owner=self,
                                     _connect={"progress": self._build_progress, "message": self.busy.set_text,
                                               "finished": self._built, "failed": self._build_failed,
                                               "cancelled": self._build_cancelled})

    def _build_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.busy.set_text(f"Downloading weights: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
            self.busy.cancel_button.setVisible(True)
        self.busy.set_progress(done, total)

    def cancel_build(self, wait: bool = False) -> None:
        if self._handle is not None and self._handle.is_running():
            self._handle.cancel()
            if wait:
                self._handle.wait()

    def shutdown(self) -> None:
        """Cancel and wait for a running build (the page stays usable)."""
        self._auto_timer.stop()
        registry.shutdown(owner=self)

    def _build_done(self) -> None:
        self.busy.stop()
        self.build_button.setEnabled(True)
        if getattr(self, "_pending_rebuild", False):
            self._pending_rebuild = False
            QTimer.singleShot(0, self.build_model)
        else:
            self._schedule_auto_build()

    def _built(self, built: BuiltModel) -> None:
        tree = built.tree
        messages = []
        saved = self.state.project.train.layer_state
        if saved:
            try:
                tree.apply_state(saved)
            except Exception as exc:
                messages.append(f"The saved choice of trainable layers does not fit this model ({exc}); "
                                "the default is used instead.")
                self._apply_default(tree)
        else:
            self._apply_default(tree)
        self.last_build = built
        self._built_key = self._building_key
        self.state.set_tf_ready(True)  # the build imported TensorFlow
        self._show_tree(tree)
        self.state.set_layer_tree(tree)
        if messages:
            self.info_banner.set_messages(messages)
        self.state.message(f"Built {built.base}: {built.total_params:,} parameters in {built.seconds:.1f} s")
        self._build_done()
        self.build_finished.emit("finished")

    @staticmethod
    def _default_key(cfg: TrainConfig) -> tuple:
        return (cfg.fine_tune_epochs > 0, int(cfg.unfreeze_top))

    def _apply_default(self, tree) -> None:
        """What trains when the user has not chosen: the top blocks when fine-tuning, else the head only."""
        cfg = self.state.project.train
        if cfg.fine_tune_epochs > 0:
            tree.unfreeze_top_blocks(int(cfg.unfreeze_top))
        else:
            tree.freeze_base()
        self._default_for = self._default_key(cfg)

    def _build_failed(self, text: str) -> None:
        self.error_banner.set_messages([text])
        self.state.message(text)
        self._build_done()
        self.build_finished.emit("failed")

    def _build_cancelled(self) -> None:
        self.state.message("Model build cancelled")
        self._build_done()
        self.build_finished.emit("cancelled")

    # --- the tree --------------------------------------------------------------------------------

    def _show_tree(self, tree) -> None:
        self.layers.show_tree(tree)

    def _tree_edited(self) -> None:
        tree = self.layers.tree
        if tree is None:
            return
        self.state.update_train_config(layer_state=tree.state())
        self.state.model_changed.emit()

    def _update_buttons(self, *_args) -> None:
        self.layers.empty_text = ("Building the model..." if self.is_building() else
                                  "Press Build model to see the layers and choose which ones train.")
        self.layers.update_buttons()

    # --- summary ---------------------------------------------------------------------------------

    def _update_summary(self, *_args) -> None:
        cfg = self.state.project.train
        if cfg.base_model_path:
            text = f"your model {Path(cfg.base_model_path).name}"
        else:
            try:
                spec = base_models.get_spec(cfg.base)
                alpha = base_models.resolve_alpha(spec, cfg.alpha) if spec.alphas else None
                size = base_models.input_size(cfg)
                text = f"{spec.name}" + (f", width {alpha:g}" if alpha is not None else "") + f", {size} px"
            except Exception as exc:
                text = str(exc)
        text += f", {self._num_classes()} classes"
        if self.last_build is not None:
            text += f" \u2014 {self.last_build.total_params:,} parameters"
        if not self.state.tf_ready:
            text += " \u2014 TensorFlow is still loading"
        self.summary.setText(text)
        self._update_buttons()
