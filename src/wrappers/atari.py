"""Atari-specific wrappers of the DQN paper (Mnih et al., 2015, "Methods"), one transform each.

They behave like Stable-Baselines3's ``atari_wrappers`` (same RNG use, same reset sequences),
so that our preset reproduces SB3's ``AtariWrapper`` observation for observation; see
tests/test_wrappers.py for the equivalence checks.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from wrappers import _validation

# Wrappers that only check or order calls; stepping the ALE underneath them changes nothing
# the agent can observe, so MaxAndSkipObservation may bypass them (see _direct_ale).
_TRANSPARENT_WRAPPERS = (gym.wrappers.PassiveEnvChecker, gym.wrappers.OrderEnforcing)


class NoopReset(gym.Wrapper):
    """On reset, take a random number (1 to ``noop_max``) of no-op actions to vary the start state.

    The count is drawn from ``env.unwrapped.np_random`` exactly like SB3's ``NoopResetEnv`` and
    gymnasium's ``AtariPreprocessing``, so the same seed gives the same start. ``noop_max=0``
    turns it off (no draw). Action 0 must be NOOP.

    Example:
        >>> import ale_py.env
        >>> env = NoopReset(ale_py.env.AtariEnv("pong", frameskip=1), noop_max=30)
        >>> obs, info = env.reset(seed=0)
        >>> 1 <= info["episode_frame_number"] <= 30
        True
    """

    def __init__(self, env: gym.Env, noop_max: int = 30):
        super().__init__(env)
        self.noop_max = _validation.non_negative_int("noop_max", noop_max)
        meanings = _validation.ale_action_meanings(env)
        if meanings is not None and meanings[0] != "NOOP":
            raise ValueError(f"NoopReset needs action 0 to be NOOP, got the action meanings {meanings}")
        self.noop_action = 0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        if self.noop_max == 0:
            return obs, info
        num_noops = int(self.unwrapped.np_random.integers(1, self.noop_max + 1))
        for _ in range(num_noops):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class MaxAndSkipObservation(gym.Wrapper):
    """Repeat each action ``skip`` frames, sum the rewards, return the max of the last two frames.

    The max removes the flicker of sprites drawn on alternate frames (DQN paper). Reset returns
    the reset frame unchanged. If the episode ends before the last frame of a step, the
    observation is the final frame alone (there is no later frame to pool with).

    Fast path: when the wrapped env is an ale-py ``AtariEnv`` with ``frameskip=1`` (directly or
    under wrappers that leave ``step`` alone, such as NoopReset, PassiveEnvChecker and
    OrderEnforcing), the ALE is stepped directly and the screen
    is read only for the two frames that are pooled, into preallocated buffers, instead of
    copying a screen out of every emulated frame. Results are identical to the slow path.

    Example:
        >>> import ale_py.env
        >>> env = MaxAndSkipObservation(ale_py.env.AtariEnv("pong", obs_type="grayscale", frameskip=1), skip=4)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(0)
        >>> obs.shape, obs.dtype.name, info["episode_frame_number"]
        ((210, 160), 'uint8', 4)
    """

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        self.skip = _validation.positive_int("skip", skip)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"MaxAndSkipObservation needs a Box observation space, got {space!r}")
        # Slot 0: second-to-last frame of the step, slot 1: last frame.
        self._frames = np.zeros((2, *space.shape), dtype=space.dtype)
        self._ale, self._read_screen = self._direct_ale(env)

    @staticmethod
    def _direct_ale(env: gym.Env) -> tuple[Any, Any]:
        """(ale, screen reader) when stepping the ALE directly equals ``env.step``, else (None, None)."""
        unwrapped = env.unwrapped
        if type(unwrapped).__module__ != "ale_py.env" or getattr(unwrapped, "_frameskip", None) != 1:
            return None, None
        layer = env
        while layer is not unwrapped:
            # A wrapper that keeps gym.Wrapper.step (NoopReset: it only changes reset) or only
            # checks calls cannot change what a step does, so the ALE may be stepped under it.
            steps_through = type(layer).step is gym.Wrapper.step
            if not (steps_through or isinstance(layer, _TRANSPARENT_WRAPPERS)):
                return None, None
            layer = layer.env
        readers = {"grayscale": unwrapped.ale.getScreenGrayscale, "rgb": unwrapped.ale.getScreenRGB}
        reader = readers.get(getattr(unwrapped, "_obs_type", None))
        return (unwrapped.ale, reader) if reader is not None else (None, None)

    def step(self, action: Any):
        if self._ale is not None:
            return self._step_ale(action)
        frames, last = self._frames, self.skip - 1
        total_reward = 0.0
        ended_early = False
        terminated = truncated = False
        info: dict = {}
        for frame_index in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            if frame_index == last - 1:
                np.copyto(frames[0], obs)
            if terminated or truncated:
                ended_early = frame_index < last
                break
        np.copyto(frames[1], obs)
        return self._pooled(ended_early), total_reward, terminated, truncated, info

    def _step_ale(self, action: Any):
        ale, unwrapped, frames, last = self._ale, self.env.unwrapped, self._frames, self.skip - 1
        ale_action = unwrapped._action_set[action]
        total_reward = 0.0
        ended_early = False
        for frame_index in range(self.skip):
            total_reward += ale.act(ale_action)
            if frame_index == last - 1:
                self._read_screen(frames[0])
            if ale.game_over():  # with truncation, as AtariEnv checks after every frame
                ended_early = frame_index < last
                break
        self._read_screen(frames[1])
        terminated = ale.game_over(with_truncation=False)
        truncated = ale.game_truncated()
        return self._pooled(ended_early), total_reward, terminated, truncated, unwrapped._get_info()

    def _pooled(self, ended_early: bool) -> np.ndarray:
        if self.skip == 1 or ended_early:
            return self._frames[1].copy()
        return np.maximum(self._frames[0], self._frames[1])


class EpisodicLife(gym.Wrapper):
    """Report the loss of a life as ``terminated``; reset the game only on a real game over.

    DQN trick that helps value estimation (Mnih et al., 2015). After a life-loss termination,
    ``reset`` takes one no-op step instead of restarting, so every state stays reachable.
    ``info["real_done"]`` tells a real game over from a lost life (for episode statistics).

    Unlike SB3's ``EpisodicLifeEnv``, any other reset (mid-episode, or with a ``seed`` or
    ``options``) restarts the game, so ``reset(seed=s)`` is always reproducible; in a normal
    loop (reset only after an episode ends) both behave the same.

    Example:
        >>> import ale_py.env
        >>> env = EpisodicLife(ale_py.env.AtariEnv("breakout", frameskip=4))
        >>> obs, info = env.reset(seed=0)
        >>> env.lives
        5
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._ale = _validation.ale_interface("EpisodicLife", env)
        self.lives = 0
        self.was_real_done = True
        self._ended_by_life_loss = False

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.was_real_done = terminated or truncated
        lives = self._ale.lives()
        # `0 < lives`: some games (Qbert) sit at 0 lives for a few frames before game over;
        # terminating then would reset twice. Same rule as SB3's EpisodicLifeEnv.
        self._ended_by_life_loss = 0 < lives < self.lives and not self.was_real_done
        if self._ended_by_life_loss:
            terminated = True
        self.lives = lives
        info["real_done"] = self.was_real_done
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any):
        soft_reset = self._ended_by_life_loss and kwargs.get("seed") is None and kwargs.get("options") is None
        self._ended_by_life_loss = False
        if not soft_reset:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            # The no-op may itself end the game; then a real reset is due.
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self._ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """After reset, press FIRE (then action 2) for games that stand still until FIRE is pressed.

    Same sequence as SB3's ``FireResetEnv``. Needs action 1 to be FIRE and at least 3 actions;
    :func:`wrappers.atari_presets.wrap_atari` adds it only to such games.

    Example:
        >>> import ale_py.env
        >>> env = FireReset(ale_py.env.AtariEnv("breakout", frameskip=4))
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape
        (210, 160, 3)
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = _validation.ale_action_meanings(env)
        if meanings is None or len(meanings) < 3 or meanings[1] != "FIRE":
            raise ValueError(
                f"FireReset needs action 1 to be FIRE and at least 3 actions, got the action meanings {meanings}"
            )

    def reset(self, **kwargs: Any):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(2)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


class ClipReward(gym.RewardWrapper):
    """Clip rewards to ``[-bound, bound]``; with the default 1 and integer Atari scores, the sign.

    The DQN paper clips "all positive rewards at 1 and all negative rewards at -1" so that one
    learning rate fits every game.

    Example:
        >>> import ale_py.env
        >>> env = ClipReward(ale_py.env.AtariEnv("pong"))
        >>> env.reward(-3.0), env.reward(0.0), env.reward(21)
        (-1.0, 0.0, 1.0)
    """

    def __init__(self, env: gym.Env, bound: float = 1.0):
        super().__init__(env)
        if not np.isfinite(bound) or bound <= 0:
            raise ValueError(f"bound must be a positive finite number, got {bound!r}")
        self.bound = float(bound)

    def reward(self, reward: SupportsFloat) -> float:
        return min(max(float(reward), -self.bound), self.bound)
