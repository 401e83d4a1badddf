"""``commands/_shared``: base/split options into a config, JSON or report output."""

from __future__ import annotations

import argparse
import json

from tlstudio.commands._shared import apply_base_and_split, print_result
from tlstudio.core.config import TrainConfig


def _args(**kw):
    base = dict(weights=None, base_model=None, val_fraction=None, test_fraction=None, seed=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_options_given_are_copied_and_file_names_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TrainConfig()
    apply_base_and_split(config, _args(weights="my.weights.h5", base_model="base.keras", val_fraction=0.3,
                                       test_fraction=0.1, seed=7))
    assert config.weights == str(tmp_path / "my.weights.h5")
    assert config.base_model_path == str(tmp_path / "base.keras")
    assert (config.split.val_fraction, config.split.test_fraction, config.split.seed) == (0.3, 0.1, 7)


def test_imagenet_and_none_are_names_not_files_and_missing_options_change_nothing():
    config = TrainConfig()
    before = (config.base_model_path, config.split.val_fraction, config.split.seed)
    apply_base_and_split(config, _args(weights="ImageNet"))
    assert config.weights == "imagenet"
    assert (config.base_model_path, config.split.val_fraction, config.split.seed) == before
    apply_base_and_split(config, _args(weights="NONE"))
    assert config.weights == "none"


def test_print_result_prints_json_or_the_report(capsys):
    print_result(True, lambda: {"a": 1}, lambda: print("report"))
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    print_result(False, lambda: {"a": 1}, lambda: print("report"))
    assert capsys.readouterr().out == "report\n"
