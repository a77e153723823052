"""Argument checks shared by the wrappers; each error names the bad value and the expected one."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def image_box(wrapper: str, space: gym.Space, ndims: tuple[int, ...] = (2, 3)) -> gym.spaces.Box:
    """Return ``space`` if it is a Box of images (``ndims`` dimensions), else raise TypeError."""
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(
            f"{wrapper} needs an image observation space (a Box of rank {' or '.join(map(str, ndims))}), "
            f"got {space!r}"
        )
    if len(space.shape) not in ndims:
        raise TypeError(
            f"{wrapper} needs an image observation space of rank {' or '.join(map(str, ndims))} "
            f"(H, W) or (H, W, C), got shape {space.shape} in {space!r}"
        )
    return space


def ale_action_meanings(env: gym.Env) -> list[str] | None:
    """The ALE action meanings of the innermost env, or None for envs that are not ALE games."""
    get_meanings = getattr(env.unwrapped, "get_action_meanings", None)
    return list(get_meanings()) if callable(get_meanings) else None


def ale_interface(wrapper: str, env: gym.Env) -> Any:
    ale = getattr(env.unwrapped, "ale", None)
    if ale is None:
        raise TypeError(
            f"{wrapper} needs an ALE game (env.unwrapped.ale, e.g. PongNoFrameskip-v4), got {env.unwrapped!r}"
        )
    return ale
