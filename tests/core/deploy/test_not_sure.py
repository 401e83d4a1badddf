"""The run's "not sure" threshold is the default everywhere a run predicts: Predictor, batch CSV."""

from __future__ import annotations

import csv

import pytest
from support.predict_run import COLORS, write_image
from support.unsure_run import OTHER_COLOURS, THRESHOLD, unsure_run

from tlstudio.core.deploy.batch import predict_folder_to_csv
from tlstudio.core.deploy.predict import NOT_SURE, Predictor, recorded_threshold


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return unsure_run(tmp_path_factory, tmp_path_factory.mktemp("unsure") / "run")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    colours = {**OTHER_COLOURS, "red": COLORS["red"], "blue": COLORS["blue"]}
    return {name: write_image(folder / f"{name}.png", colour) for name, colour in colours.items()}


def test_photos_of_another_class_answer_not_sure_with_the_run_threshold(run_dir, photos):
    predictor = Predictor.from_path(run_dir)
    assert predictor.threshold == pytest.approx(THRESHOLD)
    preds = {p.source: p for p in predictor.predict(list(photos.values()))}
    for name in OTHER_COLOURS:
        pred = preds[str(photos[name])]
        assert pred.label == NOT_SURE, name
        assert pred.probability < THRESHOLD and pred.top[0][0] in ("red", "green", "blue")  # best guess kept
    assert preds[str(photos["red"])].label == "red"
    assert preds[str(photos["blue"])].label == "blue"


def test_threshold_zero_turns_not_sure_off(run_dir, photos):
    predictor = Predictor.from_path(run_dir)
    [grey] = predictor.predict(photos["grey"], threshold=0)
    assert grey.label != NOT_SURE and grey.label == grey.top[0][0]


def test_batch_csv_answers_not_sure(run_dir, photos, tmp_path):
    out = tmp_path / "answers.csv"
    predict_folder_to_csv(Predictor.from_path(run_dir), photos["yellow"].parent, out)
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(out.open())}
    assert rows["yellow.png"]["label"] == NOT_SURE
    assert rows["red.png"]["label"] == "red"


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"threshold": {"value": 0.42, "source": "validation"}}, 0.42),
        ({"threshold": 0.3}, 0.3),
        ({"threshold": {"value": 0.0, "source": "none"}}, None),
        ({"threshold": 1.7}, None),
        ({}, None),
    ],
)
def test_recorded_threshold(summary, expected):
    assert recorded_threshold(summary) == expected


def test_exports_carry_the_threshold_to_the_card_and_the_sample_script(run_dir, photos, tmp_path):
    import subprocess
    import sys

    from tlstudio.core.deploy.export import export_model

    export_model(Predictor.from_path(run_dir), "keras", tmp_path / "out" / "colours.keras", verify=False)
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert "less than 80% probability" in card and "chosen on the validation images" in card
    script = tmp_path / "out" / "predict_keras.py"
    out = subprocess.run([sys.executable, str(script), str(photos["grey"]), str(photos["red"])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert lines[str(photos["grey"])].startswith("not sure (best guesses: ")
    assert lines[str(photos["red"])].startswith("red ")
