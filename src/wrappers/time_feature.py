"""The remaining-time feature: ``1 - t / max_steps`` appended to each observation.

An agent bootstrapping across a time limit cannot tell from a state alone how much of the
episode is left; the feature makes a fixed-length task Markovian again (Pardo et al. 2018,
"Time Limits in Reinforcement Learning", https://arxiv.org/abs/1712.00378). The semantics are
sb3-contrib's ``TimeFeatureWrapper`` (``sb3_contrib/common/wrappers/time_feature.py``), which
RL-Zoo's PyBullet hyperparameters used.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wrappers import _validation

DEFAULT_MAX_STEPS = 1000
DICT_KEY = "observation"


def episode_limit(env: gym.Env) -> int | None:
    """The step limit of ``env``'s episodes: its spec's ``max_episode_steps``, else that of a
    ``TimeLimit`` in its wrapper chain (an env built without ``gym.make`` has no spec), else None."""
    spec = getattr(env, "spec", None)
    if spec is not None and spec.max_episode_steps is not None:
        return int(spec.max_episode_steps)
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return int(env._max_episode_steps)
        env = env.env
    return None


class TimeFeatureWrapper(gym.ObservationWrapper):
    """Append the remaining time ``1 - t / max_steps`` to 1-D Box observations (sb3-contrib's semantics).

    ``t`` counts the steps since the last reset, so the feature is 1.0 after ``reset`` and falls
    by ``1 / max_steps`` per step, down to 0.0 at the time limit. ``max_steps`` is the wrapped
    env's own limit (``spec.max_episode_steps`` or a ``TimeLimit`` wrapper), or the
    ``max_steps`` argument when it has none; an env that outlives it gets negative features, as
    with sb3-contrib. ``test_mode=True`` holds the feature at 1.0, to check that a policy does not
    merely replay a memorized sequence of actions. For a Dict space (goal-conditioned envs) the
    feature goes to its ``"observation"`` entry. Observations come in the space's dtype; the
    wrapped env and its space are left unchanged.

    Example:
        >>> import gymnasium as gym
        >>> env = TimeFeatureWrapper(gym.make("Pendulum-v1"))
        >>> env.max_steps, env.observation_space.shape
        (200, (4,))
        >>> obs, info = env.reset(seed=0)
        >>> float(obs[-1])
        1.0
        >>> obs, *_ = env.step(env.action_space.sample())
        >>> env.time_feature, obs.dtype.name
        (0.995, 'float32')
        >>> TimeFeatureWrapper(gym.make("Acrobot-v1"), max_steps=7).max_steps  # the env's own limit wins
        500
        >>> TimeFeatureWrapper(gym.make("FrozenLake-v1"))
        Traceback (most recent call last):
        ...
        TypeError: TimeFeatureWrapper needs a 1-D Box observation space ... the observation space is Discrete(16)
    """

    def __init__(self, env: gym.Env, max_steps: int = DEFAULT_MAX_STEPS, test_mode: bool = False):
        super().__init__(env)
        _validation.positive_int("max_steps", max_steps)
        if not isinstance(test_mode, (bool, np.bool_)):
            raise ValueError(f"test_mode must be true or false, got {test_mode!r}")
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            if DICT_KEY not in space.spaces:
                raise TypeError(f"TimeFeatureWrapper needs a Dict observation space with an {DICT_KEY!r} entry, "
                                f"got keys {list(space.spaces)}")
            box = _feature_box(space.spaces[DICT_KEY], f"the {DICT_KEY!r} entry of the Dict observation space")
            self.observation_space = gym.spaces.Dict({**space.spaces, DICT_KEY: box})
        else:
            box = _feature_box(space, "the observation space")
            self.observation_space = box
        self._dtype = box.dtype
        limit = episode_limit(env)
        self.max_steps = int(max_steps) if limit is None else limit
        self.test_mode = bool(test_mode)
        self._current_step = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._current_step = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        self._current_step += 1
        return super().step(action)

    @property
    def time_feature(self) -> float:
        """The feature of the latest observation: the remaining fraction of the episode."""
        return 1.0 if self.test_mode else 1 - self._current_step / self.max_steps

    def observation(self, observation: Any) -> Any:
        feature = np.array([self.time_feature], dtype=self._dtype)
        if isinstance(self.observation_space, gym.spaces.Dict):
            inner = np.concatenate([np.asarray(observation[DICT_KEY], dtype=self._dtype), feature])
            return {**observation, DICT_KEY: inner}
        return np.concatenate([np.asarray(observation, dtype=self._dtype), feature])


def _feature_box(space: gym.Space, what: str) -> gym.spaces.Box:
    """``space`` (a 1-D floating Box) with one more entry bounded by [0, 1]; TypeError otherwise."""
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"TimeFeatureWrapper needs a 1-D Box observation space or a Dict with an {DICT_KEY!r} Box; "
                        f"{what} is {space!r}")
    if len(space.shape) != 1:
        raise TypeError(f"TimeFeatureWrapper needs 1-D Box observations; {what} has shape {space.shape}")
    if not np.issubdtype(space.dtype, np.floating):
        raise TypeError(f"TimeFeatureWrapper needs a floating-point Box (the feature is a fraction in [0, 1]); "
                        f"{what} has dtype {space.dtype}")
    low = np.concatenate([space.low, [0.0]]).astype(space.dtype)
    high = np.concatenate([space.high, [1.0]]).astype(space.dtype)
    return gym.spaces.Box(low=low, high=high, dtype=space.dtype)
