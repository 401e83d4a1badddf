"""TrainConfig: JSON round trips, refusals of unknown or newer files, and value checks."""

from __future__ import annotations

import json

import pytest

from tlstudio.core.config import SCHEMA_VERSION, AugmentConfig, ConfigError, SplitConfig, TrainConfig


def test_round_trip_through_json_keeps_every_field(tmp_path):
    config = TrainConfig(
        data_dir="/data/photos",
        base="EfficientNetB0",
        alpha=None,
        input_size=160,
        dropout=0.3,
        split=SplitConfig(val_fraction=0.25, test_fraction=0.1, seed=7),
        augment=AugmentConfig(enabled=True, rotation=0.2),
        layer_state={"version": 1, "trainable": ["conv_pw_13"]},
        head_lr=0.01,
    )
    path = tmp_path / "config.json"
    path.write_text(config.to_json(), encoding="utf-8")
    loaded = TrainConfig.load(path)
    assert loaded == config
    assert isinstance(loaded.split, SplitConfig) and loaded.split.seed == 7
    assert isinstance(loaded.augment, AugmentConfig) and loaded.augment.rotation == 0.2
    assert json.loads(config.to_json())["schema_version"] == SCHEMA_VERSION


def test_unknown_keys_are_refused_by_name():
    data = TrainConfig().to_dict() | {"learning_rate": 0.1, "zzz": 1}
    with pytest.raises(ConfigError, match="unknown configuration keys: learning_rate, zzz"):
        TrainConfig.from_dict(data)


def test_a_newer_schema_is_refused_with_advice():
    data = TrainConfig().to_dict() | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ConfigError, match="newer tlstudio.*update"):
        TrainConfig.from_dict(data)


@pytest.mark.parametrize("data", [[1, 2], "text", None])
def test_a_config_must_be_an_object(data):
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_dict(data)


def test_wrong_nested_keys_are_a_config_error_not_a_type_error():
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"split": {"val_fraction": 0.2, "bogus": 1}})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resize_policy": "squash"}, "resize policy"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"pooling": "median"}, "pooling"),
        ({"batch_size": 0}, "batch size"),
        ({"head_epochs": 0, "fine_tune_epochs": 0}, "at least one epoch"),
        ({"dropout": 1.0}, "dropout"),
        ({"split": SplitConfig(val_fraction=0.0)}, "fractions"),
        ({"split": SplitConfig(val_fraction=0.6, test_fraction=0.4)}, "fractions"),
    ],
)
def test_validate_refuses_values_that_cannot_work(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_defaults_are_valid():
    TrainConfig().validate()


def test_load_says_what_is_wrong_with_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        TrainConfig.load(broken)


def test_a_value_left_at_its_default_is_chosen_automatically_and_a_value_set_is_used():
    config = TrainConfig()
    assert all(config.is_auto(n) for n in ("head_lr", "dropout", "epochs", "fine_tune_lr", "threshold"))
    changed = TrainConfig(head_lr=0.005, head_epochs=4, dropout=0.3)
    assert not changed.is_auto("head_lr") and not changed.is_auto("epochs") and not changed.is_auto("dropout")
    assert changed.is_auto("threshold")
    # the switches say it outright, whatever the value
    assert TrainConfig(head_lr=0.005, auto_head_lr=True).is_auto("head_lr")
    assert not TrainConfig(auto_threshold=False).is_auto("threshold")


def test_bad_values_are_one_line_errors_and_the_json_round_trips():
    for bad in (dict(threshold=1.5), dict(head_lr=0.0), dict(dropout=1.0), dict(head_epochs=0)):
        with pytest.raises(ConfigError) as info:
            TrainConfig(**bad).validate()
        assert "\n" not in str(info.value)
    config = TrainConfig(head_lr=0.02, auto_dropout=False, threshold=0.3)
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and again.auto_dropout is False and again.auto_head_lr is None
    with pytest.raises(ConfigError, match="unknown configuration keys: colour"):
        TrainConfig.from_dict({**config.to_dict(), "colour": "red"})


def test_read_config_file_gives_one_line_errors(tmp_path):
    from tlstudio.core.config import ConfigError, read_config_file

    with pytest.raises(ConfigError, match="configuration file not found"):
        read_config_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        read_config_file(bad)
    good = tmp_path / "good.json"
    good.write_text('{"base": "MobileNet"}', encoding="utf-8")
    assert read_config_file(good) == {"base": "MobileNet"}


def test_the_validation_share_is_automatic_by_default_and_round_trips(tmp_path):
    assert TrainConfig().split.val_fraction is None
    path = tmp_path / "config.json"
    path.write_text(TrainConfig().to_json(), encoding="utf-8")
    assert TrainConfig.load(path).split.val_fraction is None
    path.write_text(TrainConfig(split=SplitConfig(val_fraction=0.25)).to_json(), encoding="utf-8")
    assert TrainConfig.load(path).split.val_fraction == 0.25
