"""The same-step autoreset contract of our vector envs, on every supported gymnasium.

gymnasium 0.29 resets an ended env inside the same step() and puts the ended episode's last
observation in infos["final_observation"]. gymnasium 1.x resets on the *next* step() by default
(AutoresetMode.NEXT_STEP, whose extra step would enter our rollouts as a fake transition);
1.1 added AutoresetMode.SAME_STEP, which keeps 0.29's contract under the key "final_obs"
(https://farama.org/Vector-Autoreset-Mode). gymnasium 1.0 has no same-step mode, so pyproject
excludes it.

This module sits in the foundation layer beside :mod:`wrappers.registration`: the Atari presets
build their vector envs with it and ``agents_zoo.core.envs`` re-exports it, so neither package
imports the other's higher layers (see ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
from gymnasium.vector import SyncVectorEnv, VectorEnv

try:
    from gymnasium.vector import AutoresetMode

    SAME_STEP_KWARGS: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}
    FINAL_OBSERVATION_KEY = "final_obs"
except ImportError:  # gymnasium 0.29
    AutoresetMode = None  # type: ignore[assignment,misc]
    SAME_STEP_KWARGS = {}
    FINAL_OBSERVATION_KEY = "final_observation"


def sync_vector_env(factories: list[Callable[[], gym.Env]]) -> SyncVectorEnv:
    """A ``SyncVectorEnv`` that resets ended envs in the same step, on every supported gymnasium."""
    return SyncVectorEnv(factories, **SAME_STEP_KWARGS)


def check_same_step_autoreset(vec: VectorEnv) -> None:
    """Refuse a user's vector env that resets on the next step (gymnasium 1.x's default)."""
    if AutoresetMode is None:
        return
    mode = (getattr(vec, "metadata", None) or {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.SAME_STEP:
        raise ValueError(f"the vector env resets ended episodes with autoreset_mode={mode}; agents-zoo needs "
                         "autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP (pass it to SyncVectorEnv/"
                         "AsyncVectorEnv), or pass an env id or factory")
