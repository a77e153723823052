"""Hill climbing on a linear policy: a complete agents-zoo plugin in one file.

It subclasses ``BaseAgent`` and so gets learn/predict/save/load/evaluate, callbacks, progress
bars and the CLI for free; it only defines its config, its state and its training loop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces

from agents_zoo.core.base import BaseAgent
from agents_zoo.core.config import AgentConfig, check_positive, field


@dataclasses.dataclass
class HillClimbingConfig(AgentConfig):
    noise_scale: float = field(0.1, doc="std of the Gaussian perturbation of the weights")

    def validate(self) -> None:
        super().validate()
        if self.n_envs != 1:
            raise ValueError(f"n_envs must be 1 for hill climbing (one episode per candidate), got {self.n_envs}")
        check_positive(self, "noise_scale")


class HillClimbing(BaseAgent):
    name = "hill-climbing"
    config_class = HillClimbingConfig
    observation_spaces = (spaces.Box,)
    action_spaces = (spaces.Discrete,)

    def _setup(self) -> None:
        n_inputs = int(np.prod(self.observation_space.shape))
        self.weights = np.zeros((n_inputs, int(self.action_space.n)), dtype=np.float64)
        self.best_return = -np.inf

    def _learn(self, callback, log_interval: int) -> None:
        candidate = self.weights + self.config.noise_scale * self.rng.standard_normal(self.weights.shape)
        episode_return = 0.0
        while self.num_timesteps < self._total_timesteps:
            actions = self._act(candidate, self._last_obs)
            self._last_obs, rewards, terminated, truncated, _ = self._env_step(actions)
            episode_return += float(rewards[0])
            if terminated[0] or truncated[0]:
                if episode_return >= self.best_return:  # keep the better policy
                    self.best_return, self.weights = episode_return, candidate
                candidate = self.weights + self.config.noise_scale * self.rng.standard_normal(self.weights.shape)
                episode_return = 0.0
            if not callback.on_step():
                break

    def _act(self, weights: np.ndarray, observations: np.ndarray) -> np.ndarray:
        return (observations.reshape(len(observations), -1) @ weights).argmax(axis=1)

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        return self._act(self.weights, observations)

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "best_return": np.array(self.best_return)}

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays["weights"].shape != self.weights.shape:
            raise ValueError(f"saved weights have shape {arrays['weights'].shape}, expected {self.weights.shape}")
        self.weights, self.best_return = arrays["weights"], float(arrays["best_return"])
