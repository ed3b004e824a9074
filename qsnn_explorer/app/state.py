"""The explorer's parameter state, generated from TrainConfig's field metadata (never declared twice).

``ExplorerState`` has one ``param`` parameter per TrainConfig field, with the field's bounds,
choices and one-line doc; ``to_config`` validates through TrainConfig, so the app can never
hold a config the engine would refuse.
"""
from __future__ import annotations

import dataclasses

import param

from ..config import TrainConfig

# Number fields whose range spans five decades or more (lr) get a typed input instead of a slider.
LOG_RANGE = 1e5


def _parameter(f: dataclasses.Field) -> param.Parameter:
    meta, default = f.metadata, f.default
    label = f.name.replace("_", " ")
    common = dict(default=default, doc=meta["doc"], label=label)
    if isinstance(default, bool):
        return param.Boolean(**common)
    if meta["choices"] is not None:
        return param.Selector(objects=list(meta["choices"]), **common)
    if isinstance(default, tuple):  # layer widths, typed as "256, 128"
        return param.String(**{**common, "default": ", ".join(map(str, default))})
    if isinstance(default, int):
        return param.Integer(bounds=meta["bounds"], **common)
    if isinstance(default, float):
        return param.Number(bounds=meta["bounds"], **common)
    return param.String(**common)


ExplorerState = type("ExplorerState", (param.Parameterized,), {
    "__doc__": "Every TrainConfig field as a param parameter (bounds, choices, doc from the config).",
    **{f.name: _parameter(f) for f in dataclasses.fields(TrainConfig)},
})


def state_values(cfg: TrainConfig) -> dict:
    """TrainConfig → the values ExplorerState holds (tuples become 'a, b' strings)."""
    return {k: (", ".join(map(str, v)) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


def to_config(state: param.Parameterized) -> TrainConfig:
    """Validate the state as a TrainConfig; raises ValueError naming the field and its range."""
    return TrainConfig(**{name: getattr(state, name) for name in TrainConfig.fields()})


def make_state(cfg: TrainConfig | None = None) -> param.Parameterized:
    state = ExplorerState()
    state.param.update(**state_values(cfg or TrainConfig()))
    return state


def uses_log_input(name: str) -> bool:
    """True for fields like lr whose bounds span several decades."""
    bounds = TrainConfig.fields()[name].metadata["bounds"]
    return bool(bounds) and bounds[0] > 0 and bounds[1] / bounds[0] >= LOG_RANGE
