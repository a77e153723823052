"""The random agent: uniform actions. The baseline that normalizes benchmark scores, and the
smallest agent that exercises the facade, save/load and the CLI end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces

from agents_zoo.core.base import BaseAgent
from agents_zoo.core.callbacks import BaseCallback
from agents_zoo.core.config import AgentConfig


@dataclasses.dataclass
class RandomConfig(AgentConfig):
    """The random agent has only the shared settings."""


class RandomAgent(BaseAgent):
    name = "random"
    config_class = RandomConfig

    def _learn(self, callback: BaseCallback, log_interval: int) -> None:
        # "Learning" just plays, so episode statistics and callbacks work as for real agents.
        assert self._last_obs is not None
        iteration = 0
        while self.num_timesteps < self._total_timesteps:
            actions = self._predict(self._last_obs, deterministic=False)
            self._last_obs, *_ = self._env_step(actions)
            if not callback.on_step():
                break
            iteration += 1
            if log_interval and iteration % (log_interval * 1000) == 0:
                self._record_rollout_stats()
                self.logger.dump(self.num_timesteps)

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        n = len(observations)
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return self.rng.integers(space.start, space.start + space.n, size=n)
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return self.rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)
