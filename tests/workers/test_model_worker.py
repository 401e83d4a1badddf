"""Model workers: build the classifier's layer tree off the GUI thread; open a model file safely."""

from __future__ import annotations

from tlstudio.core.config import TrainConfig
from tlstudio.workers.base import create_worker
from tlstudio.workers.model_worker import BuiltModel, ModelFileInfo, build_model, open_model_file

TINY = dict(base="MobileNet", alpha=0.25, weights="none", input_size=32)


def run(qtbot, recorder, fn, *args):
    ok, failed = [], []
    handle = create_worker(fn, *args, _connect={"finished": ok.append, "failed": failed.append})
    qtbot.waitUntil(lambda: bool(ok or failed), timeout=120000)
    assert handle.wait(10000)
    return (ok[0] if ok else None), (failed[0] if failed else None)


def test_build_returns_a_pure_layer_tree(qtbot, recorder):
    from tlstudio.core.models.layer_tree import LayerTree

    built, error = run(qtbot, recorder, build_model, TrainConfig(**TINY), 3)
    assert error is None and isinstance(built, BuiltModel)
    assert isinstance(built.tree, LayerTree)
    assert built.num_classes == 3 and built.input_size == 32
    assert built.total_params == built.tree.total_params > 0
    assert "random" in built.weights_message.lower() or "pre-train" in built.weights_message.lower()


def test_build_failure_is_a_message(qtbot, recorder, tmp_path):
    config = TrainConfig(**{**TINY, "weights": str(tmp_path / "missing.h5")})
    built, error = run(qtbot, recorder, build_model, config, 2)
    assert built is None and "not found" in error


def test_open_model_reports_its_source_and_labels(qtbot, recorder, tmp_path):
    from tlstudio.core.models import catalogue as base_models
    model = base_models.build_classifier(TrainConfig(**TINY), 2)
    path = tmp_path / "model.keras"
    model.save(path)
    (tmp_path / "labels.txt").write_text("cats\ndogs\n")
    info, error = run(qtbot, recorder, open_model_file, path)
    assert error is None and isinstance(info, ModelFileInfo)
    assert info.source in ("tlstudio", "keras3") and info.source_label
    assert info.labels == ("cats", "dogs")
    assert info.input_size == (32, 32) and info.num_outputs == 2 and info.params > 0


def test_open_model_refuses_junk_with_a_message(qtbot, recorder, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    info, error = run(qtbot, recorder, open_model_file, junk)
    assert info is None and error and "Unexpected" not in error
