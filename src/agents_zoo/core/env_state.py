"""Snapshots of a vector env's state, so a run resumed from a checkpoint continues the very
episodes it was in, and matches an uninterrupted run step for step.

Gymnasium has no state API, so we capture the plain data of every layer (vector env, wrappers,
the unwrapped env): numbers, strings, NumPy arrays, sequences of numbers and NumPy generators.
That is the whole state of the classic-control envs and of the usual wrappers (TimeLimit,
OrderEnforcing, ...). An env holding anything else (a physics engine, an emulator handle) is
reported as not snapshotable, and a resumed run then starts fresh episodes instead, with a
seed derived from the step count. Nothing here uses pickle: the snapshot is JSON + arrays.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

# Attributes that are structure, configuration or rendering, not episode state.
_SKIPPED = {
    "env", "envs", "env_fns", "spec", "_cached_spec", "metadata", "render_mode", "screen", "clock",
    "viewer", "isopen", "closed", "_ext_spec", "copy", "observation_space", "action_space",
    "single_observation_space", "single_action_space", "_observation_space", "_action_space",
    "_metadata", "_reward_range", "reward_range", "_saved_kwargs", "_kwargs", "_np_random_seed",
    "_actions",  # SyncVectorEnv: a transient iterator over the last actions
}
_SIMPLE = (bool, int, float, str, type(None))


class NotSnapshotable(TypeError):
    """The env holds state that cannot be saved as plain data."""


def _layers(vec_env: VectorEnv) -> list[Any]:
    layers: list[Any] = [vec_env]
    for env in getattr(vec_env, "envs", None) or []:
        while True:
            layers.append(env)
            if not isinstance(env, gym.Wrapper):
                break
            env = env.env
    return layers


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, _SIMPLE):
        return {"value": value}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return {"scalar": value.item(), "dtype": value.dtype.name}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise NotSnapshotable(f"{key} is an object array")
        arrays[key] = value.copy()
        return {"array": key}
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state, "bit_generator": type(value.bit_generator).__name__}
    if isinstance(value, (list, tuple)) and all(isinstance(v, (*_SIMPLE, np.integer, np.floating, np.bool_)) for v in value):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        dtypes = [v.dtype.name if isinstance(v, np.generic) else None for v in value]
        return {"sequence": items, "dtypes": dtypes, "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and not value:
        return {"value": {}}
    raise NotSnapshotable(f"{key} has type {type(value).__name__}")


def snapshot(vec_env: VectorEnv) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able description, arrays) of the env's state; raises ``NotSnapshotable``."""
    arrays: dict[str, np.ndarray] = {}
    described = []
    for index, layer in enumerate(_layers(vec_env)):
        fields = {}
        for name, value in vars(layer).items():
            if name in _SKIPPED or isinstance(value, gym.Space) or callable(value):
                continue
            fields[name] = _encode(value, f"env_state/{index}/{name}", arrays)
        described.append({"class": type(layer).__qualname__, "fields": fields})
    return {"layers": described}, arrays


def restore(vec_env: VectorEnv, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Put a ``snapshot`` back; raises ``ValueError`` if the env's structure differs."""
    layers = _layers(vec_env)
    saved_layers = description.get("layers") if isinstance(description, dict) else None
    if not isinstance(saved_layers, list) or len(saved_layers) != len(layers):
        raise ValueError(f"saved env state has {len(saved_layers or [])} layers, the env has {len(layers)}")
    for layer, saved in zip(layers, saved_layers):
        if saved.get("class") != type(layer).__qualname__:
            raise ValueError(f"saved env layer {saved.get('class')!r} does not match {type(layer).__qualname__!r}")
    for layer, saved in zip(layers, saved_layers):
        for name, encoded in saved["fields"].items():
            setattr(layer, name, _decode(encoded, getattr(layer, name, None), arrays))


def _decode(encoded: dict[str, Any], current: Any, arrays: dict[str, np.ndarray]) -> Any:
    if "value" in encoded:
        return encoded["value"]
    if "scalar" in encoded:
        return np.dtype(encoded["dtype"]).type(encoded["scalar"])
    if "array" in encoded:
        return arrays[encoded["array"]].copy()
    if "generator" in encoded:
        generator = current if isinstance(current, np.random.Generator) else None
        if generator is None or type(generator.bit_generator).__name__ != encoded["bit_generator"]:
            bit_generator_cls = getattr(np.random, encoded["bit_generator"], None)
            if bit_generator_cls is None or not issubclass(bit_generator_cls, np.random.BitGenerator):
                raise ValueError(f"unknown bit generator {encoded['bit_generator']!r} in saved env state")
            generator = np.random.Generator(bit_generator_cls())
        generator.bit_generator.state = encoded["generator"]
        return generator
    if "sequence" in encoded:
        items = [v if dtype is None else np.dtype(dtype).type(v) for v, dtype in zip(encoded["sequence"], encoded["dtypes"])]
        return tuple(items) if encoded["tuple"] else items
    raise ValueError(f"unreadable saved env field {encoded!r}")
