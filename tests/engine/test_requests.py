"""Each request against a real engine process, compared with core called here in the test process."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from support.trained_runs import CLASSES, reference_predictor, write_image
from support.waiting import wait_until

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import Cancelled
from tlstudio.engine import protocol as p
from tlstudio.engine.client import EngineError

#: Cancel must be answered within about a second; the margin is for a loaded test machine.
CANCEL_LIMIT = 2.0


def test_the_engine_warmed_up_tensorflow_and_this_process_never_asked_for_it(engine):
    info = engine.call(p.Ping(), timeout=30)
    assert info.tensorflow_loaded and info.pid == engine.pid


def test_build_model_returns_the_layer_tree_as_plain_data(engine, recorder):
    config = TrainConfig(base="MobileNet", alpha=0.25, input_size=64, weights="none")
    events = recorder()
    built = engine.call(p.BuildModel(config, 3), on_event=events, timeout=300)
    assert isinstance(built, p.BuiltModel)
    assert built.base == "MobileNet" and built.input_size == 64 and built.num_classes == 3
    leaves = list(built.tree.root.leaves())
    names = [leaf.name for leaf in leaves]
    assert "conv1" in names and any(leaf.layer_type == "Dense" for leaf in leaves)
    assert built.total_params == sum(leaf.params for leaf in leaves) > 200_000
    assert built.trainable_params == sum(leaf.trainable_params for leaf in leaves)
    assert all(isinstance(leaf.trainable, bool) for leaf in leaves)
    assert next(leaf for leaf in leaves if leaf.name == "conv1").output_shape == "(None, 32, 32, 8)"
    assert events.of(p.StepProgress)


def test_open_model_file_reports_labels_and_input_size(engine, runs):
    info = engine.call(p.OpenModelFile(str(runs.runs[0] / "model.keras")), timeout=120)
    assert info.source == "tlstudio"
    assert info.labels == tuple(sorted(CLASSES))
    assert info.input_size == (64, 64) and info.num_outputs == 3 and info.params > 0


def test_a_file_that_is_not_a_model_fails_with_one_line(engine, tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(EngineError) as info:
        engine.call(p.OpenModelFile(str(bad)), timeout=60)
    assert "\n" not in str(info.value) and str(info.value)


def test_load_predictor_describes_the_model(engine, runs):
    info = engine.call(p.LoadPredictor(str(runs.runs[0])), timeout=120)
    assert info.labels == tuple(sorted(CLASSES)) and info.input_size == (64, 64)
    assert info.resize_policy == "stretch" and info.source == str(runs.runs[0])
    with pytest.raises(EngineError, match="no such model file or run folder"):
        engine.call(p.LoadPredictor(str(runs.runs[0] / "missing")), timeout=60)


def test_predict_images_matches_core_and_streams_each_answer(engine, runs, recorder):
    run = runs.runs[-1]
    red = str(runs.loose / "red_new.png")
    green = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(runs.loose / "green_new.png").convert("RGB"))
    events = recorder()
    items = ((11, red), (12, str(runs.loose / "broken.jpg")), (13, green))
    predictions = engine.call(p.PredictImages(str(run), items, top_k=2), on_event=events, timeout=120)
    reference = reference_predictor(run).predict([red, green], top_k=2)
    assert [e.item_id for e in events.of(p.ImagePredicted)] == [11, 12, 13]
    assert predictions[0].label == reference[0].label == "red"
    assert predictions[2].label == reference[1].label == "green"
    assert predictions[0].probability == pytest.approx(reference[0].probability, abs=1e-4)
    assert len(predictions[0].top) == 2
    assert predictions[1].error and not predictions[0].error


def test_gradcam_comes_back_as_png_bytes_and_an_array(engine, runs):
    from PIL import Image

    run = runs.runs[-1]
    result = engine.call(p.GradCamRequest(str(run), str(runs.loose / "red_new.png"), overlay_size=120), timeout=120)
    assert result.label == "red" and result.class_index == sorted(CLASSES).index("red")
    assert result.heatmap.shape == (64, 64) and 0.0 <= result.heatmap.min() <= result.heatmap.max() <= 1.0
    overlay = Image.open(io.BytesIO(result.overlay_png))
    assert overlay.format == "PNG" and overlay.mode == "RGB"
    assert max(overlay.size) == 40  # drawn on the original image (40x36), never enlarged past it
    as_array = engine.call(p.GradCamRequest(str(run), str(runs.loose / "red_new.png"), overlay_size=120,
                                            overlay_format="rgb"), timeout=120)
    assert as_array.overlay_png is None and as_array.overlay_rgb.dtype == np.uint8
    assert np.array_equal(as_array.overlay_rgb, np.asarray(overlay.convert("RGB")))


def test_predict_folder_writes_the_csv_and_reports_progress(engine, runs, tmp_path, recorder):
    out = tmp_path / "out.csv"
    events = recorder()
    result = engine.call(p.PredictFolder(str(runs.runs[-1]), (str(runs.loose),), csv_path=str(out)),
                         on_event=events, timeout=120)
    assert len(result.predictions) == 4
    assert sum(1 for pred in result.predictions if pred.error) == 1
    lines = out.read_text().splitlines()
    assert lines[0].startswith("path,label") and len(lines) == 5
    steps = events.of(p.StepProgress)
    assert steps[-1].done == steps[-1].total == 4


def test_evaluate_a_run_again_gives_its_recorded_accuracy(engine, runs):
    run = runs.runs[-1]
    evaluation = engine.call(p.Evaluate(str(run)), timeout=300)
    recorded = json.loads((run / "evaluation.json").read_text())
    assert set(evaluation["splits"]) == set(recorded["splits"])
    for name, split in evaluation["splits"].items():
        assert split["n"] == recorded["splits"][name]["n"]
        assert split["accuracy"] == pytest.approx(recorded["splits"][name]["accuracy"], abs=1e-6)


def test_evaluate_on_a_labelled_folder(engine, runs):
    evaluation = engine.call(p.Evaluate(str(runs.runs[-1]), folder=str(runs.data)), timeout=300)
    split = evaluation["splits"]["folder"]
    assert split["n"] == 18 and split["accuracy"] > 0.6
    assert evaluation["classes"] == sorted(CLASSES)


def test_export_and_verify(engine, runs, tmp_path, recorder):
    events = recorder()
    summary = engine.call(p.Export(str(runs.runs[-1]), ("keras",), str(tmp_path / "out"), verify=True),
                          on_event=events, timeout=600)
    [outcome] = summary.outcomes
    assert outcome.ok, outcome.error
    assert (tmp_path / "out" / "model.keras").is_file()
    assert outcome.verification["ok"] and outcome.verification["top1_agreement"] == 1.0
    last = events.of(p.StepProgress)[-1]
    assert last.done == last.total > 0
    assert events.of(p.FormatStarted) == [p.FormatStarted("keras")]


# ------------------------------------------------------------------------------------------ cancel


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    colours = {"blue": (40, 80, 220), "green": (40, 200, 60), "red": (220, 40, 40)}
    for name, colour in colours.items():
        for i in range(200):
            write_image(root / name / f"{i:03d}.png", colour, pattern=i)
    return root


def _cancel_after_first_step(engine, request, recorder, minimum_done=1):
    events = recorder()
    pending = engine.submit(request, on_event=events)
    assert wait_until(lambda: any(e.done >= minimum_done for e in events.of(p.StepProgress)) or pending.done(), 300)
    assert not pending.done(), "finished before it could be cancelled"
    pending.cancel()
    import time

    start = time.monotonic()
    with pytest.raises(Cancelled):
        pending.result(timeout=60)
    return time.monotonic() - start, events


def test_cancel_a_folder_prediction(engine, runs, many_images, recorder):
    seconds, events = _cancel_after_first_step(
        engine, p.PredictFolder(str(runs.runs[-1]), (str(many_images),)), recorder)
    assert seconds < CANCEL_LIMIT
    assert max(e.done for e in events.of(p.StepProgress)) < 600  # it really stopped early


def test_cancel_an_evaluation(engine, runs, many_images, recorder):
    seconds, events = _cancel_after_first_step(
        engine, p.Evaluate(str(runs.runs[-1]), folder=str(many_images)), recorder)
    assert seconds < CANCEL_LIMIT
    assert max(e.done for e in events.of(p.StepProgress)) < 600


def test_cancel_an_export(engine, runs, tmp_path, recorder):
    request = p.Export(str(runs.runs[-1]), ("savedmodel", "tflite", "keras"), str(tmp_path / "out"), verify=True)
    seconds, _ = _cancel_after_first_step(engine, request, recorder, minimum_done=0)
    assert seconds < CANCEL_LIMIT
    # The lane is free again: the next batch request is answered.
    result = engine.call(p.PredictFolder(str(runs.runs[-1]), (str(runs.loose),)), timeout=300)
    assert len(result.predictions) == 4


def test_cancel_a_model_build(engine, recorder):
    config = TrainConfig(base="ResNet50", alpha=None, input_size=96, weights="none")
    pending = engine.submit(p.BuildModel(config, 3))
    import time

    time.sleep(0.2)
    start = time.monotonic()
    pending.cancel()
    with pytest.raises(Cancelled):
        pending.result(timeout=60)
    assert time.monotonic() - start < CANCEL_LIMIT
