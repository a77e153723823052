"""Rollout and replay buffers shared by the agents.

Termination and truncation are kept apart everywhere: a terminated episode has no future value,
a truncated one (time limit) is bootstrapped from the value of its final observation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from gymnasium import spaces


def _action_shape_dtype(action_space: spaces.Space) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(action_space, spaces.Discrete):
        return (), np.dtype(np.int64)
    return tuple(action_space.shape), np.dtype(np.float32)


def _obs_dtype(observation_space: spaces.Space) -> np.dtype:
    if isinstance(observation_space, spaces.Discrete):
        return np.dtype(np.int64)
    # Images stay uint8 (4x less memory); vectors are float32 for TF.
    return np.dtype(observation_space.dtype) if observation_space.dtype == np.uint8 else np.dtype(np.float32)


def _obs_shape(observation_space: spaces.Space) -> tuple[int, ...]:
    return () if isinstance(observation_space, spaces.Discrete) else tuple(observation_space.shape)


# ----------------------------------------------------------------------------- GAE
def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminations: np.ndarray,
    truncations: np.ndarray,
    last_values: np.ndarray,
    truncation_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16) over (T, N) arrays.

    Step t's successor value is ``values[t + 1]`` (``last_values`` after the last step), zero if
    the episode terminated at t, and ``truncation_values[t]`` (the value of the final
    observation) if it was truncated at t. The advantage recursion stops at either end.
    Returns (advantages, returns) with returns = advantages + values (the TD(lambda) target).
    """
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(values, dtype=np.float32)
    next_advantage = np.zeros_like(last_values, dtype=np.float32)
    next_values = last_values
    for t in reversed(range(n_steps)):
        terminated = terminations[t].astype(np.float32)
        ended = np.logical_or(terminations[t], truncations[t]).astype(np.float32)
        successor = np.where(truncations[t], truncation_values[t], next_values)
        delta = rewards[t] + gamma * successor * (1.0 - terminated) - values[t]
        next_advantage = delta + gamma * gae_lambda * (1.0 - ended) * next_advantage
        advantages[t] = next_advantage
        next_values = values[t]
    return advantages, (advantages + values).astype(np.float32)


class RolloutBatch(NamedTuple):
    observations: np.ndarray
    actions: np.ndarray
    old_values: np.ndarray
    old_log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray


class RolloutBuffer:
    """``n_steps`` x ``n_envs`` transitions of the current policy, then GAE over them."""

    def __init__(self, n_steps: int, n_envs: int, observation_space: spaces.Space, action_space: spaces.Space,
                 gamma: float, gae_lambda: float):
        if n_steps < 1 or n_envs < 1:
            raise ValueError(f"a rollout buffer needs n_steps >= 1 and n_envs >= 1, got {n_steps} and {n_envs}")
        self.n_steps, self.n_envs = n_steps, n_envs
        self.gamma, self.gae_lambda = gamma, gae_lambda
        action_shape, action_dtype = _action_shape_dtype(action_space)
        self.observations = np.zeros((n_steps, n_envs, *_obs_shape(observation_space)), dtype=_obs_dtype(observation_space))
        self.actions = np.zeros((n_steps, n_envs, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.log_probs = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.terminations = np.zeros((n_steps, n_envs), dtype=bool)
        self.truncations = np.zeros((n_steps, n_envs), dtype=bool)
        self.truncation_values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.advantages = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.returns = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.pos = 0

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def reset(self) -> None:
        self.pos = 0
        self.truncation_values[:] = 0.0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, values: np.ndarray,
            log_probs: np.ndarray, terminations: np.ndarray, truncations: np.ndarray) -> None:
        if self.full:
            raise RuntimeError(f"rollout buffer is full ({self.n_steps} steps); call reset() after the update")
        t = self.pos
        self.observations[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.values[t] = values
        self.log_probs[t] = log_probs
        self.terminations[t] = terminations
        self.truncations[t] = truncations
        self.pos += 1

    def set_truncation_values(self, env_indices: np.ndarray, values: np.ndarray) -> None:
        """Values of the final observations of the envs truncated at the last added step."""
        self.truncation_values[self.pos - 1, env_indices] = values

    def compute_returns_and_advantage(self, last_values: np.ndarray) -> None:
        self.advantages[:], self.returns[:] = compute_gae(
            self.rewards, self.values, self.terminations, self.truncations,
            np.asarray(last_values, dtype=np.float32), self.truncation_values, self.gamma, self.gae_lambda,
        )

    def get(self) -> RolloutBatch:
        """All transitions, flattened to (n_steps * n_envs, ...) in time-major order."""
        def flat(array: np.ndarray) -> np.ndarray:
            return array.reshape(self.n_steps * self.n_envs, *array.shape[2:])

        return RolloutBatch(flat(self.observations), flat(self.actions), flat(self.values),
                            flat(self.log_probs), flat(self.advantages), flat(self.returns))


# ----------------------------------------------------------------------------- replay
class ReplayBatch(NamedTuple):
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray  # 1.0 only for true terminations: truncated transitions bootstrap


class ReplayBuffer:
    """A circular buffer of transitions for vector observations.

    Image observations should use a frame-deduplicating buffer instead (see the DQN agent),
    which stores each Atari frame once rather than eight times.
    """

    def __init__(self, capacity: int, observation_space: spaces.Space, action_space: spaces.Space):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"replay buffer capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        action_shape, action_dtype = _action_shape_dtype(action_space)
        obs_shape, obs_dtype = _obs_shape(observation_space), _obs_dtype(observation_space)
        self.observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((capacity,), dtype=np.float32)
        self.terminations = np.zeros((capacity,), dtype=np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            terminations: np.ndarray) -> None:
        """Add one transition per env (leading axis = envs)."""
        n = len(rewards)
        index = (self.pos + np.arange(n)) % self.capacity
        self.observations[index] = obs
        self.next_observations[index] = next_obs
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.terminations[index] = terminations
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=count)

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int | None = None) -> ReplayBatch:
        """One batch, or ``n_batches`` stacked as (n_batches, batch_size, ...) for one compiled call."""
        count = batch_size * (n_batches or 1)
        idx = self.sample_indices(rng, count)
        batch = ReplayBatch(self.observations[idx], self.actions[idx], self.rewards[idx],
                            self.next_observations[idx], self.terminations[idx])
        if n_batches is None:
            return batch
        return ReplayBatch(*(a.reshape(n_batches, batch_size, *a.shape[1:]) for a in batch))

    def state_arrays(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"observations": self.observations[:n], "next_observations": self.next_observations[:n],
                "actions": self.actions[:n], "rewards": self.rewards[:n], "terminations": self.terminations[:n],
                "position": np.array([self.pos, self.size], dtype=np.int64)}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pos, size = (int(v) for v in arrays["position"])
        if not 0 <= size <= self.capacity or not 0 <= pos < self.capacity:
            raise ValueError(f"saved replay buffer position {pos}/{size} does not fit capacity {self.capacity}")
        for name in ("observations", "next_observations", "actions", "rewards", "terminations"):
            stored = getattr(self, name)
            if arrays[name].shape[1:] != stored.shape[1:] or len(arrays[name]) != size:
                raise ValueError(f"saved replay {name} has shape {arrays[name].shape}, expected ({size}, *{stored.shape[1:]})")
            stored[:size] = arrays[name]
        self.pos, self.size = pos, size
