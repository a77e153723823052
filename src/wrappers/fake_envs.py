"""Tiny deterministic image envs for doctests, property tests and examples (no emulator needed)."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np


class RandomImageEnv(gym.Env):
    """Random uint8 images of a fixed shape; episodes end after ``episode_length`` steps.

    The frame number is written into the first pixel (mod 256) so tests can tell frames apart.

    Example:
        >>> env = RandomImageEnv(shape=(4, 4), episode_length=2)
        >>> obs, info = env.reset(seed=0)
        >>> int(obs.flat[0]), env.step(0)[2], env.step(0)[2]
        (0, False, True)
    """

    metadata = {"render_modes": []}

    def __init__(self, shape: Sequence[int] = (84, 84), episode_length: int = 100, low: int = 0, high: int = 255):
        self.observation_space = gym.spaces.Box(low=low, high=high, shape=tuple(shape), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.episode_length = episode_length
        self._low, self._high = low, high
        self._frame_number = 0

    def _frame(self) -> np.ndarray:
        frame = self.np_random.integers(self._low, self._high + 1, size=self.observation_space.shape, dtype=np.uint8)
        frame.flat[0] = min(max(self._frame_number % 256, self._low), self._high)
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._frame_number = 0
        return self._frame(), {}

    def step(self, action: Any):
        self._frame_number += 1
        terminated = self._frame_number >= self.episode_length
        return self._frame(), float(action), terminated, False, {}
