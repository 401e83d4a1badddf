"""The engine protocol: every message is plain data that survives the real pipe unchanged."""

from __future__ import annotations

import dataclasses
import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from tlstudio.core import events as ev
from tlstudio.core.config import TrainConfig
from tlstudio.core.deploy.predict import Prediction
from tlstudio.core.models.layer_tree import LayerNode, LayerTree
from tlstudio.engine import protocol as p
from tlstudio.engine.server import ALL_HANDLERS


def _requests() -> list[p.Request]:
    return [cls for cls in vars(p).values()
            if isinstance(cls, type) and issubclass(cls, p.Request) and cls is not p.Request]


def _tree() -> LayerTree:
    leaf = LayerNode("conv", "layer", "Conv2D", "(None, 8, 8, 4)", 112, 112, True, path=("m", "conv"))
    root = LayerNode("m", "model", "Functional", "(None, 2)", 112, 112, True, children=[leaf], path=())
    return LayerTree(root)


MESSAGES = [
    p.Call(1, p.BuildModel(TrainConfig(data_dir="/data", base="MobileNet", alpha=0.25), 3)),
    p.Call(2, p.Train(TrainConfig(data_dir="/data"), "/runs/r1", resume=False)),
    p.Call(3, p.PredictImages("/runs/r1", ((7, "/a.png"), (8, np.zeros((4, 4, 3), np.uint8))), top_k=2)),
    p.Call(4, p.GradCamRequest("/runs/r1", "/a.png", class_index=1)),
    p.Call(5, p.PredictFolder("/runs/r1", ("/imgs",), csv_path="/out.csv")),
    p.Call(6, p.Export("/runs/r1", ("keras", "tflite"), "/out")),
    p.Call(7, p.Evaluate("/runs/r1", folder="/test")),
    p.Call(8, p.OpenModelFile("/m.h5")),
    p.Call(9, p.LoadPredictor("/runs/r1")),
    p.Done(9, p.PredictorInfo("/runs/r1", ("a", "b"), (64, 64), "crop", ("labels from labels.txt",))),
    p.CancelCall(2),
    p.Shutdown(),
    p.Hello(123),
    p.Heartbeat(2, True),
    p.Progress(2, ev.BatchEnded("head", 0, 3, 10, 0.5, 0.75, 4)),
    p.Progress(2, ev.EpochEnded("head", 0, 5, 1, 0.5, 0.7, 0.6, 0.65, 1.5)),
    p.Progress(5, p.StepProgress(16, 400, "Predicting...")),
    p.Progress(3, p.ImagePredicted(7, Prediction("/a.png", [("red", 0.9), ("blue", 0.1)], "red", 0.9, None, 0))),
    p.Done(1, p.BuiltModel(_tree(), "MobileNet", 224, 3, 112, 112, "", 0.5)),
    p.Done(4, p.GradCamResult(1, "red", 0.9, np.ones((8, 8), np.float32), b"\x89PNG...", "conv")),
    p.Done(6, p.ExportSummary("/out", (p.FormatOutcome("keras", (("/out/model.keras", 10),)),
                                       p.FormatOutcome("onnx", error="tf2onnx is missing", missing_dependency=True)))),
    p.Failed(7, "no such folder: /test"),
    p.CallCancelled(5),
]


def _equal(a, b) -> bool:
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, LayerTree):
        return isinstance(b, LayerTree) and a.to_dict() == b.to_dict()
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b) and a.dtype == b.dtype
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_every_message_crosses_a_real_pipe_unchanged():
    ctx = multiprocessing.get_context("spawn")
    left, right = ctx.Pipe()
    try:
        for message in MESSAGES:
            left.send(message)
            back = right.recv()
            assert _equal(message, back), message
            right.send(back)
            assert _equal(message, left.recv())
    finally:
        left.close()
        right.close()


def test_a_layer_tree_keeps_its_names_counts_and_flags():
    [back] = [m for m in MESSAGES if isinstance(m, p.Done) and isinstance(m.value, p.BuiltModel)]
    tree = back.value.tree
    assert [n.name for n in tree.root.iter_nodes()] == ["m", "conv"]
    assert tree.root.children[0].trainable is True and tree.root.children[0].params == 112


def test_every_request_has_a_lane_and_a_handler():
    requests = _requests()
    assert {p.Train, p.BuildModel, p.PredictImages, p.GradCamRequest, p.PredictFolder, p.Export,
            p.Evaluate, p.OpenModelFile, p.WarmUp, p.Ping, p.LoadPredictor} <= set(requests)
    for cls in requests:
        assert cls.lane in p.LANES
        assert cls in ALL_HANDLERS, cls
    assert p.Train.lane == p.LANE_TRAIN
    # Interactive answers never wait behind a long batch job or a training.
    assert p.PredictImages.lane == p.GradCamRequest.lane == p.LANE_INTERACTIVE
    assert p.PredictFolder.lane == p.Export.lane == p.LANE_BATCH


def test_messages_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MESSAGES[0].call_id = 9  # type: ignore[misc]


def test_the_client_side_imports_neither_tensorflow_nor_qt():
    code = (
        "import sys; import tlstudio.engine.client, tlstudio.engine.protocol; "
        "bad = [m for m in ('tensorflow', 'keras', 'PySide6') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
