"""Evaluation metrics on a case checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlstudio.core.evaluate import build_evaluation, evaluate_predictions


def test_metrics_on_a_hand_checked_case():
    classes = ["ant", "bee", "wasp"]
    y = [0, 0, 0, 1, 1, 2]
    probs = np.array(
        [
            [0.8, 0.1, 0.1],  # ant -> ant
            [0.6, 0.3, 0.1],  # ant -> ant
            [0.2, 0.7, 0.1],  # ant -> bee
            [0.1, 0.9, 0.0],  # bee -> bee
            [0.5, 0.4, 0.1],  # bee -> ant
            [0.1, 0.1, 0.8],  # wasp -> wasp
        ]
    )
    paths = [f"img{i}.jpg" for i in range(6)]
    r = evaluate_predictions(y, probs, classes, paths, top_n=2)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    ant, bee, wasp = (r["per_class"][c] for c in classes)
    # ant: tp 2, predicted 3, support 3
    assert ant["precision"] == pytest.approx(2 / 3) and ant["recall"] == pytest.approx(2 / 3)
    assert ant["f1"] == pytest.approx(2 / 3) and ant["support"] == 3
    # bee: tp 1, predicted 2, support 2
    assert bee["precision"] == pytest.approx(0.5) and bee["recall"] == pytest.approx(0.5)
    assert wasp == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    expected_loss = -np.mean(np.log([0.8, 0.6, 0.2, 0.9, 0.4, 0.8]))
    assert r["loss"] == pytest.approx(expected_loss)
    # the two highest losses: img2 (p=0.2) then img4 (p=0.4)
    assert [s["path"] for s in r["top_losses"]] == ["img2.jpg", "img4.jpg"]
    top = r["top_losses"][0]
    assert (top["true"], top["pred"]) == (0, 1) and top["prob"] == pytest.approx(0.7)
    assert top["loss"] == pytest.approx(-math.log(0.2))
    assert len(r["samples"]) == 6 and not r["warnings"]


def test_a_model_that_predicts_one_class_is_flagged():
    y = [0, 1, 0, 1, 0, 1]
    probs = np.tile([0.9, 0.1], (6, 1))
    r = evaluate_predictions(y, probs, ["a", "b"])
    assert r["warnings"] and "'a'" in r["warnings"][0]
    ev = build_evaluation(["a", "b"], "/data", {"val": r})
    assert ev["warnings"][0].startswith("val: ")
    assert ev["splits"]["val"]["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        evaluate_predictions([0, 1], np.zeros((2, 3)), ["a", "b"])


def test_the_95_percent_interval_is_wilsons():
    from tlstudio.core.evaluate import accuracy_interval

    lo, hi = accuracy_interval(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)
    assert accuracy_interval(10, 10)[1] == 1.0 and accuracy_interval(0, 0) == (0.0, 1.0)
    r = evaluate_predictions([0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ["a", "b"])
    assert r["accuracy_ci95"] == pytest.approx(list(accuracy_interval(2, 3)))


def test_the_not_sure_threshold_is_chosen_between_wrong_and_right_answers():
    from tlstudio.core.evaluate import THRESHOLDS, choose_threshold, run_threshold

    # right answers are confident, wrong ones are not: the threshold falls between them
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.5, 0.45, 0.4])
    right = np.array([1, 1, 1, 1, 1, 0, 0, 1], bool)
    chosen = choose_threshold(conf, right)
    assert chosen["value"] in THRESHOLDS and 0.5 < chosen["value"] <= 0.75
    assert chosen["answered"] == pytest.approx(5 / 8) and chosen["accuracy_answered"] == 1.0
    # every answer right: just below the least confident one, so stranger images get "not sure"
    assert choose_threshold(np.array([0.9, 0.72, 0.8]), np.ones(3, bool))["value"] == 0.7
    split = evaluate_predictions([0, 1], np.array([[0.9, 0.1], [0.3, 0.7]]), ["a", "b"])
    assert run_threshold(split)["source"] == "validation"
    assert run_threshold(split, 0.4) == {"value": 0.4, "source": "set"}


def test_a_small_validation_set_is_flagged_as_too_small_to_trust():
    from tlstudio.core.evaluate import reliability_warnings

    few = evaluate_predictions([0, 0, 1, 1], np.array([[0.9, 0.1]] * 2 + [[0.1, 0.9]] * 2), ["a", "b"])
    (warning,) = reliability_warnings(few, ["a", "b"])
    assert "only 4 validation images" in warning and "fewer than 5 for a, b" in warning
    y = np.arange(400) % 2
    many = evaluate_predictions(y, np.eye(2)[y] * 0.8 + 0.1, ["a", "b"])
    assert reliability_warnings(many, ["a", "b"]) == []
