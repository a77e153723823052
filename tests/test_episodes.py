"""The one episode loop (agents_zoo.core.episodes.run_episodes) on every kind of vector env we build.

An episode still running at ``max_episode_steps`` is cut and its env alone restarted: by
``reset(options={"reset_mask": ...})`` on gymnasium >= 1.1 (so also on ale-py's C++
``AtariVectorEnv``, which has no envs to reset one by one), by the sub-env's ``reset`` on 0.29.
"""

from __future__ import annotations

import itertools
from typing import Callable

import gymnasium as gym
import numpy as np
import pytest

from agents_zoo.core.envs import AutoresetMode, sync_vector_env
from agents_zoo.core.episodes import run_episodes
from wrappers import ale_vector, atari_presets

try:
    ale_vector.atari_vector_env_class()
    ALE_UNAVAILABLE = ""
except ale_vector.AleVectorUnavailable as error:
    ALE_UNAVAILABLE = str(error)


def up_and_down() -> Callable[[np.ndarray], np.ndarray]:
    """Pong's paddle up (RIGHT) for 3 steps, down (LEFT) for 3, ...: it never rests, so no two frames match."""
    steps = itertools.count()
    return lambda obs: np.full(len(obs), 2 if next(steps) // 3 % 2 == 0 else 3, dtype=np.int64)


@pytest.mark.parametrize("backend", [
    "python",
    pytest.param("ale", marks=pytest.mark.skipif(bool(ALE_UNAVAILABLE), reason=f"no C++ Atari vector env: "
                                                                                 f"{ALE_UNAVAILABLE}")),
])
def test_atari_episodes_cut_at_the_step_limit_restart_only_their_env(backend):
    envs = atari_presets.make_atari_vector_env("Pong", 2, backend=backend)
    steps = 12
    # Env 0 plays 2 episodes and env 1 plays 3, so env 0 runs on uncut while env 1 restarts.
    episodes = run_episodes(envs, up_and_down(), 5, seed=0, max_episode_steps=steps, record=True)
    envs.close()
    assert [(episode.length, episode.terminated) for episode in episodes] == [(steps, False)] * 5
    for episode in episodes:
        assert episode.observations.shape == (steps + 1, 4, 84, 84) and episode.actions.shape == (steps,)
        first, last = episode.observations[0], episode.observations[-1]
        # A fresh episode's stack repeats its first frame; 12 steps later the paddle has moved.
        assert (first == first[-1]).all(), "an episode did not start from a reset"
        assert not (last == last[-1]).all()


def test_cut_episodes_have_the_limit_length_and_end_with_the_observation_after_their_last_action():
    envs = sync_vector_env([lambda: gym.make("CartPole-v1", max_episode_steps=None)] * 2)
    balance = lambda obs: (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)  # noqa: E731 - keeps the pole up
    episodes = run_episodes(envs, balance, 3, seed=1, max_episode_steps=30, record=True)
    assert [(episode.length, episode.terminated) for episode in episodes] == [(30, False)] * 3
    for episode in episodes:
        assert episode.observations.shape == (31, 4) and np.abs(episode.observations[0]).max() <= 0.05  # reset state


@pytest.mark.skipif(AutoresetMode is None, reason="gymnasium 0.29 has no reset_mask")
def test_an_async_vector_env_is_restarted_through_its_reset_mask():
    envs = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1", max_episode_steps=None)] * 2,
                                     autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        balance = lambda obs: (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)  # noqa: E731
        episodes = run_episodes(envs, balance, 4, seed=1, max_episode_steps=20)
    finally:
        envs.close()
    assert [(episode.length, episode.terminated) for episode in episodes] == [(20, False)] * 4
