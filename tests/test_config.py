"""TrainConfig: validation names the field and its range; JSON round trip; hot/cold metadata."""
import dataclasses
import json

import pytest

from qsnn_explorer import PRESETS, TrainConfig, preset


def test_defaults_valid_and_every_field_documented():
    cfg = TrainConfig()
    for name, f in TrainConfig.fields().items():
        assert f.metadata["doc"], name
        assert isinstance(f.metadata["hot"], bool), name
        has_range = f.metadata["bounds"] is not None or f.metadata["choices"] is not None
        assert has_range or isinstance(getattr(cfg, name), bool), f"{name} has no bounds or choices"


@pytest.mark.parametrize("field,value,needle", [
    ("lr", 2.0, "lr=2.0 is out of range; allowed: [1e-06, 1.0]"),
    ("lr", float("nan"), "lr=nan"),
    ("num_steps", 0, "num_steps=0 is out of range; allowed: [1, 1000]"),
    ("num_steps", 2.5, "num_steps must be an integer"),
    ("weight_bits", 9, "weight_bits=9 is not allowed; allowed: 1, 2, 3, 4, 5, 6, 7, 8, 32"),
    ("surrogate", "relu", "surrogate='relu' is not allowed"),
    ("hidden", [0], "hidden=0 is out of range"),
    ("hidden", [], "hidden must be a non-empty list"),
    ("learn_beta", "yes", "learn_beta must be true or false"),
    ("beta", "fast", "beta must be a number in [0.0, 1.0]"),
    ("mem_bits", 20, "mem_bits must be 2–16, or 32"),
])
def test_bad_value_names_field_and_range(field, value, needle):
    with pytest.raises(ValueError) as err:
        TrainConfig(**{field: value})
    assert needle in str(err.value)


def test_cross_field_rules():
    with pytest.raises(ValueError, match="readout='spikes'"):
        TrainConfig(loss="count_mse", readout="current")
    with pytest.raises(ValueError, match="adali_window_min"):
        TrainConfig(adali_window_min=2.0, adali_window_max=1.0)


def test_frozen_and_replace_validates():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1
    assert cfg.replace(lr=0.01).lr == 0.01 and cfg.lr == 5e-4
    with pytest.raises(ValueError, match="lr="):
        cfg.replace(lr=-1)
    with pytest.raises(ValueError, match="unknown config field"):
        cfg.replace(learning_rate=0.1)


def test_strings_are_coerced_as_from_a_url_or_cli():
    cfg = TrainConfig(lr="0.002", num_steps="30", hidden="256, 128")
    assert cfg.lr == 0.002 and cfg.num_steps == 30 and cfg.hidden == (256, 128)


def test_json_round_trip_and_bad_json():
    cfg = TrainConfig(hidden=(256, 128), weight_bits=4, surrogate="q_pseudospike", seed=7)
    text = cfg.to_json()
    assert json.loads(text)["hidden"] == [256, 128]
    assert TrainConfig.from_json(text) == cfg
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_json("{lr: 1")
    with pytest.raises(ValueError, match="unknown config field"):
        TrainConfig.from_json('{"lr": 0.001, "colour": "red"}')
    with pytest.raises(ValueError, match="JSON object"):
        TrainConfig.from_json("[1, 2]")


def test_hot_and_cold_split():
    hot, cold = set(TrainConfig.hot_fields()), set(TrainConfig.cold_fields())
    assert not hot & cold and hot | cold == set(TrainConfig.fields())
    assert {"surrogate_sharpness", "weight_bits", "sparsity_weight", "lr_period", "lr", "loss"} <= hot
    assert {"dataset", "model", "hidden", "num_steps", "beta", "threshold", "seed", "batch_size"} <= cold


def test_diff_lists_changed_fields():
    a = TrainConfig()
    assert a.diff(a.replace(weight_bits=4, lr=1e-3)) == {"weight_bits": (32, 4), "lr": (5e-4, 1e-3)}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_config(name):
    assert isinstance(preset(name), TrainConfig)


def test_unknown_preset():
    with pytest.raises(ValueError, match="preset='nope' is unknown"):
        preset("nope")
