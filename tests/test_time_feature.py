"""TimeFeatureWrapper: the feature along an episode, resets, its space, bad input, and equality with sb3-contrib's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from wrappers import TimeFeatureWrapper
from wrappers.fake_envs import RandomImageEnv


class GoalEnv(gym.Env):
    """A goal-conditioned env in the Dict layout of gymnasium-robotics (no time limit of its own)."""

    observation_space = gym.spaces.Dict({
        "observation": gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
        "desired_goal": gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
    })
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_feature_falls_from_one_to_zero_over_an_episode_and_restarts_at_reset():
    inner = gym.make("Pendulum-v1")
    env = TimeFeatureWrapper(gym.make("Pendulum-v1"))
    assert env.max_steps == 200
    obs, _ = env.reset(seed=3)
    inner_obs, _ = inner.reset(seed=3)
    features = [obs[-1]]
    np.testing.assert_array_equal(obs[:-1], inner_obs)
    truncated = False
    actions = np.random.default_rng(0).uniform(-2, 2, size=(200, 1)).astype(np.float32)
    for action in actions:
        obs, _, terminated, truncated, _ = env.step(action)
        inner_obs, *_ = inner.step(action)
        np.testing.assert_array_equal(obs[:-1], inner_obs)
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        features.append(obs[-1])
    assert truncated and not terminated
    expected = (1 - np.arange(201) / 200).astype(np.float32)
    np.testing.assert_array_equal(features, expected)
    assert features[0] == 1.0 and features[-1] == 0.0
    for _ in range(5):
        env.step(actions[0])
    obs, _ = env.reset(seed=4)
    assert obs[-1] == 1.0 and env.time_feature == 1.0


def test_space_gets_one_entry_bounded_by_zero_and_one_and_the_wrapped_env_is_untouched():
    base = gym.make("Pendulum-v1")
    before = base.observation_space
    env = TimeFeatureWrapper(base)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.shape == (4,) and space.dtype == np.float32
    np.testing.assert_array_equal(space.low, np.append(before.low, 0.0).astype(np.float32))
    np.testing.assert_array_equal(space.high, np.append(before.high, 1.0).astype(np.float32))
    assert base.observation_space is before and before.shape == (3,)
    float64 = GoalEnv()  # a float64 Box keeps its dtype
    float64.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
    assert TimeFeatureWrapper(float64).observation_space.dtype == np.float64


def test_max_steps_comes_from_the_env_limit_else_the_argument():
    assert TimeFeatureWrapper(gym.make("Pendulum-v1", max_episode_steps=50), max_steps=7).max_steps == 50
    assert TimeFeatureWrapper(gym.wrappers.TimeLimit(GoalEnv(), 30)).max_steps == 30  # no spec, a TimeLimit
    assert TimeFeatureWrapper(GoalEnv()).max_steps == 1000
    env = TimeFeatureWrapper(GoalEnv(), max_steps=4)
    env.reset(seed=0)
    features = [env.step(0)[0]["observation"][-1] for _ in range(6)]
    # Past max_steps the feature goes negative, as sb3-contrib's does.
    np.testing.assert_allclose(features, [0.75, 0.5, 0.25, 0.0, -0.25, -0.5])


def test_dict_observations_get_the_feature_in_their_observation_entry():
    base = GoalEnv()
    env = TimeFeatureWrapper(base, max_steps=10)
    assert env.observation_space["observation"].shape == (4,)
    assert env.observation_space["desired_goal"] == base.observation_space["desired_goal"]
    assert base.observation_space["observation"].shape == (3,)
    obs, _ = env.reset(seed=0)
    assert obs["observation"][-1] == 1.0 and obs["desired_goal"].shape == (2,)
    obs, *_ = env.step(0)
    assert obs["observation"][-1] == np.float32(0.9) and env.observation_space.contains(obs)


def test_test_mode_holds_the_feature_at_one():
    env = TimeFeatureWrapper(gym.make("Pendulum-v1"), test_mode=True)
    env.reset(seed=0)
    assert all(env.step(np.zeros(1, np.float32))[0][-1] == 1.0 for _ in range(20))


@pytest.mark.parametrize("make_env, message", [
    (lambda: gym.make("FrozenLake-v1"), r"needs a 1-D Box observation space .* is Discrete\(16\)"),
    (lambda: RandomImageEnv(shape=(210, 160, 3)), r"needs 1-D Box observations; the observation space has shape \(210, 160, 3\)"),
    (lambda: gym.wrappers.TimeLimit(_int_box_env(), 5), r"needs a floating-point Box .* has dtype int64"),
    (lambda: _dict_env_without_observation(), r"with an 'observation' entry, got keys \['achieved_goal'\]"),
])
def test_spaces_it_cannot_extend_fail_in_one_line_naming_them(make_env, message):
    with pytest.raises(TypeError, match=message) as error:
        TimeFeatureWrapper(make_env())
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("arguments, message", [
    ({"max_steps": 0}, "max_steps must be a positive int, got 0"),
    ({"max_steps": 2.5}, "max_steps must be a positive int, got 2.5"),
    ({"test_mode": "yes"}, "test_mode must be true or false, got 'yes'"),
])
def test_bad_arguments_name_the_value(arguments, message):
    with pytest.raises(ValueError, match=message):
        TimeFeatureWrapper(gym.make("Pendulum-v1"), **arguments)


def _int_box_env() -> gym.Env:
    env = GoalEnv()
    env.observation_space = gym.spaces.Box(0, 9, shape=(3,), dtype=np.int64)
    return env


def _dict_env_without_observation() -> gym.Env:
    env = GoalEnv()
    env.observation_space = gym.spaces.Dict({"achieved_goal": gym.spaces.Box(-1.0, 1.0, shape=(2,))})
    return env


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "HopperBulletEnv-v0"])
def test_equals_sb3_contrib_time_feature_wrapper(env_id):
    contrib = pytest.importorskip("sb3_contrib.common.wrappers")
    if env_id not in gym.registry:
        pytest.skip(f"{env_id} is not installed")
    ours, theirs = TimeFeatureWrapper(gym.make(env_id)), contrib.TimeFeatureWrapper(gym.make(env_id))
    assert ours.observation_space == theirs.observation_space
    rng = np.random.default_rng(1)
    ours_obs, _ = ours.reset(seed=5)
    theirs_obs, _ = theirs.reset(seed=5)
    resets = 0
    for step in range(400):
        np.testing.assert_array_equal(ours_obs, theirs_obs, err_msg=f"step {step}")
        assert ours_obs.dtype == theirs_obs.dtype
        action = rng.uniform(ours.action_space.low, ours.action_space.high).astype(ours.action_space.dtype)
        ours_obs, ours_reward, ours_terminated, ours_truncated, _ = ours.step(action)
        theirs_obs, theirs_reward, theirs_terminated, theirs_truncated, _ = theirs.step(action)
        assert (ours_reward, ours_terminated, ours_truncated) == (theirs_reward, theirs_terminated, theirs_truncated)
        if ours_terminated or ours_truncated or step == 150:  # a reset mid-episode too
            ours_obs, _ = ours.reset(seed=6 + resets)
            theirs_obs, _ = theirs.reset(seed=6 + resets)
            resets += 1
    assert resets >= 2
