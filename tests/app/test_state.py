"""Config ↔ app state ↔ URL: one source of truth, exact round trips, no declared-twice widgets."""
import pytest
from panel.io.location import Location

from qsnn_explorer import TrainConfig, preset
from qsnn_explorer.app.state import ExplorerState, make_state, to_config, uses_log_input

SYNC = {name: name for name in TrainConfig.fields()}


def test_every_config_field_is_a_parameter_with_its_bounds_and_doc():
    params = ExplorerState.param
    for name, f in TrainConfig.fields().items():
        p = params[name]
        assert p.doc == f.metadata["doc"]
        if f.metadata["choices"] is not None:
            assert list(p.objects) == list(f.metadata["choices"])
        elif f.metadata["bounds"] is not None and not isinstance(f.default, tuple):
            assert tuple(p.bounds) == tuple(f.metadata["bounds"])


@pytest.mark.parametrize("name", ["mnist5k-mlp-4bit", "p1-quickstart", "events-mnist-mlp"])
def test_config_state_round_trip(name):
    cfg = preset(name, seed=11, hidden=(256, 128) if name != "p1-quickstart" else (16, 64))
    assert to_config(make_state(cfg)) == cfg


def test_url_round_trip_keeps_every_parameter_and_seed():
    cfg = preset("mnist5k-mlp", weight_bits=4, seed=42, surrogate="gaussian", lr_schedule="cosine_restarts",
                 hidden=(300, 100))
    source = Location()
    source.sync(make_state(cfg), SYNC)
    assert "seed=42" in source.search and "weight_bits=4" in source.search
    target_state = make_state()
    Location(search=source.search).sync(target_state, SYNC)
    assert to_config(target_state) == cfg


def test_invalid_state_is_refused_by_the_config():
    state = make_state()
    state.hidden = "256, x"
    with pytest.raises(ValueError, match="hidden"):
        to_config(state)


def test_log_inputs_only_for_decade_spanning_fields():
    assert uses_log_input("lr") and not uses_log_input("beta")
    assert not uses_log_input("surrogate_sharpness")  # the headline slider stays a slider
