"""The one episode loop: play full episodes of a batch policy on a vector env.

``BaseAgent.evaluate`` (returns and lengths) and ``demonstrations.rollout`` (whole trajectories)
both run it. The episodes are spread over the envs up front, env ``i`` playing
``(n_episodes + i) // num_envs`` of them, so that short episodes do not crowd out long ones (the
bias stable-baselines3 fixed in its ``evaluate_policy``, DLR-RM/stable-baselines3#402).

Example:
    >>> import gymnasium as gym
    >>> from agents_zoo.core.envs import sync_vector_env
    >>> env = sync_vector_env([lambda: gym.make("CartPole-v1")] * 2)
    >>> episodes = run_episodes(env, lambda obs: [0] * len(obs), n_episodes=3, seed=0)
    >>> len(episodes), all(e.length < 30 for e in episodes)
    (3, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
from gymnasium.vector import VectorEnv

from agents_zoo.core.envs import FINAL_OBSERVATION_KEY, AutoresetMode


@dataclasses.dataclass
class Episode:
    """One finished episode; the trajectory arrays are set only when it was recorded."""

    episode_return: float
    length: int
    terminated: bool
    """True when the env terminated it (not a truncation or the loop's step limit)."""
    observations: np.ndarray | None = None
    """``length + 1`` observations: the last is the one after the last action."""
    actions: np.ndarray | None = None
    rewards: np.ndarray | None = None


def run_episodes(vec_env: VectorEnv, act: Callable[[np.ndarray], Any], n_episodes: int, *,
                 seed: int | None = None, max_episode_steps: int | None = None,
                 record: bool = False) -> list[Episode]:
    """Reset ``vec_env`` with ``seed``, then play until ``n_episodes`` episodes have ended.

    ``act`` maps a batch of observations (one per env) to a batch of actions. An episode still
    running after ``max_episode_steps`` steps is cut and its env reset, as a ``TimeLimit`` would:
    by ``reset(options={"reset_mask": ...})`` on gymnasium >= 1.1 (any vector env: ``SyncVectorEnv``,
    ``AsyncVectorEnv``, ale-py's ``AtariVectorEnv``), by ``envs[i].reset()`` of a ``SyncVectorEnv``
    on gymnasium 0.29.
    ``record`` keeps every observation, action and reward. The env is not closed. Episodes are
    returned in the order they ended.
    """
    n = vec_env.num_envs
    targets = np.array([(n_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=np.int64)
    running, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    steps: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n)]
    episodes: list[Episode] = []
    obs, _ = vec_env.reset(seed=seed)
    while (counts < targets).any():
        actions = np.asarray(act(np.asarray(obs)))
        next_obs, rewards, terminated, truncated, infos = vec_env.step(actions)
        running += rewards
        lengths += 1
        if record:
            for i in np.flatnonzero(counts < targets):
                steps[i].append((np.array(obs[i]), np.array(actions[i]), float(rewards[i])))
        ended = np.logical_or(terminated, truncated)
        cut = ~ended & (lengths >= max_episode_steps) if max_episode_steps is not None else np.zeros(n, bool)
        for i in np.flatnonzero(ended | cut):
            if counts[i] < targets[i]:
                episode = Episode(float(running[i]), int(lengths[i]), bool(terminated[i]))
                if record:
                    last = infos[FINAL_OBSERVATION_KEY][i] if ended[i] else next_obs[i]
                    episode.observations = np.stack([*(step[0] for step in steps[i]), np.asarray(last)])
                    episode.actions = np.stack([step[1] for step in steps[i]])
                    episode.rewards = np.asarray([step[2] for step in steps[i]], np.float32)
                    steps[i] = []
                episodes.append(episode)
                counts[i] += 1
            running[i], lengths[i] = 0.0, 0
        restart = cut & (counts < targets)
        obs = _reset_envs(vec_env, next_obs, restart) if restart.any() else next_obs
    return episodes


def _reset_envs(vec_env: VectorEnv, obs: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Start the envs ``which`` afresh, mid-episode; the others keep their observations."""
    if AutoresetMode is not None:
        # gymnasium >= 1.1 vector envs reset a subset of their envs through this option
        # (Farama-Foundation/Gymnasium#1227, https://farama.org/Vector-Autoreset-Mode); the others keep theirs.
        return vec_env.reset(options={"reset_mask": np.asarray(which, dtype=np.bool_)})[0]
    envs = getattr(vec_env, "envs", None)
    if envs is None:
        raise RuntimeError("an evaluation episode ran past max_episode_steps on a vector env whose envs "
                           "cannot be reset one by one on gymnasium 0.29; give the env a TimeLimit")
    obs = np.array(obs)
    for i in np.flatnonzero(which):
        obs[i] = envs[i].reset()[0]
    return obs
