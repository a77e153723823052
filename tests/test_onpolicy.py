"""Shared on-policy core: GAE against SB3, optimizers against torch, config validation, reward
hook, truncation bootstrap, normalization state and action clipping. The policy network and its
NumPy acting path are tested in test_policies.py."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents_zoo.agents.a2c import A2C, A2CConfig
from agents_zoo.agents.onpolicy import explained_variance
from agents_zoo.agents.ppo import PPO, PPOConfig
from agents_zoo.core.buffers import compute_gae
from agents_zoo.core.optimizers import TorchStyleOptimizer


# ----------------------------------------------------------------------------- GAE == SB3
@pytest.mark.parametrize("gae_lambda", [0.0, 0.8, 1.0])
def test_gae_matches_sb3_with_terminations_and_truncations(gae_lambda):
    sb3_buffers = pytest.importorskip("stable_baselines3.common.buffers")
    rng = np.random.default_rng(0)
    n_steps, n_envs, gamma = 16, 3, 0.97
    rewards = rng.normal(size=(n_steps, n_envs)).astype(np.float32)
    values = rng.normal(size=(n_steps, n_envs)).astype(np.float32)
    ended = rng.random((n_steps, n_envs)) < 0.25
    truncations = ended & (rng.random((n_steps, n_envs)) < 0.5)
    terminations = ended & ~truncations
    truncations[-1, :2], terminations[-1, :2] = (True, False), (False, True)  # both endings at the last step too
    ended = terminations | truncations
    truncation_values = np.where(truncations, rng.normal(size=(n_steps, n_envs)), 0).astype(np.float32)
    last_values = rng.normal(size=n_envs).astype(np.float32)
    ours_advantages, ours_returns = compute_gae(rewards, values, terminations, truncations, last_values,
                                                truncation_values, gamma, gae_lambda)

    # SB3 folds truncation into the reward at collection time (r += gamma * V(final obs)) and
    # marks the next step as an episode start; the last step's dones are passed separately.
    import torch

    space = gym.spaces.Box(-1, 1, (1,))
    buffer = sb3_buffers.RolloutBuffer(n_steps, space, gym.spaces.Discrete(2), "cpu", gae_lambda, gamma, n_envs)
    episode_starts = np.zeros(n_envs, dtype=np.float32)
    for t in range(n_steps):
        buffer.add(np.zeros((n_envs, 1)), np.zeros((n_envs, 1)), rewards[t] + gamma * truncation_values[t],
                   episode_starts, torch.tensor(values[t]), torch.zeros(n_envs))
        episode_starts = ended[t].astype(np.float32)
    buffer.compute_returns_and_advantage(torch.tensor(last_values), ended[-1].astype(np.float32))
    np.testing.assert_allclose(ours_advantages, buffer.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours_returns, buffer.returns, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- optimizers == torch
@pytest.mark.parametrize("kind", ["adam", "rmsprop", "compiled rmsprop", "tf-like rmsprop",
                                  "compiled tf-like rmsprop"])
def test_torch_style_optimizer_matches_torch(kind, monkeypatch):
    """Each form against its reference: torch's Adam and RMSprop, and SB3's RMSpropTFLike (TF 1's
    RMSprop, which RL-Zoo's Atari A2C uses) for ``rms_prop_tf_like``."""
    torch = pytest.importorskip("torch")
    if kind.startswith("compiled"):  # the XLA path that large networks (the Nature CNN) take
        monkeypatch.setattr(TorchStyleOptimizer, "COMPILED_RMSPROP_MIN_PARAMETERS", 12)
    tf_like = "tf-like" in kind
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(3, 4)).astype(np.float32)
    variable = tf.Variable(initial)
    optimizer = TorchStyleOptimizer([variable], kind.split()[-1], epsilon=1e-5, rms_prop_tf_like=tf_like)
    assert optimizer.compiled_rmsprop == kind.startswith("compiled")
    reference = torch.tensor(initial, requires_grad=True)
    if tf_like:
        rmsprop_tf_like = pytest.importorskip("stable_baselines3.common.sb2_compat.rmsprop_tf_like")
        torch_optimizer = rmsprop_tf_like.RMSpropTFLike([reference], lr=1e-2, alpha=0.99, eps=1e-5)
    else:
        torch_optimizer = (torch.optim.Adam([reference], lr=1e-2, eps=1e-5) if kind == "adam"
                           else torch.optim.RMSprop([reference], lr=1e-2, alpha=0.99, eps=1e-5))
    step = tf.function(lambda g: optimizer.apply([g], [variable], tf.constant(1e-2)))
    for i in range(12):
        gradient = (rng.normal(size=(3, 4)) * (1e-3 if i % 2 else 1.0)).astype(np.float32)  # eps matters at 1e-3
        step(tf.constant(gradient))
        reference.grad = torch.tensor(gradient)
        torch_optimizer.step()
    np.testing.assert_allclose(variable.numpy(), reference.detach().numpy(), atol=1e-6)


def test_tf_like_rmsprop_first_step_by_hand():
    """TF 1's RMSprop from its accumulator of ones: v = 0.99 + 0.01 g^2, p -= lr g / sqrt(v + eps)."""
    variable = tf.Variable([1.0, -2.0])
    optimizer = TorchStyleOptimizer([variable], "rmsprop", epsilon=1e-5, rms_prop_tf_like=True)
    np.testing.assert_array_equal(optimizer.second_moments[0].numpy(), [1.0, 1.0])
    gradient = np.array([3.0, -0.5], np.float32)
    optimizer.apply([tf.constant(gradient)], [variable], tf.constant(0.1))
    square = 0.99 + 0.01 * gradient.astype(np.float64) ** 2
    expected = np.array([1.0, -2.0]) - 0.1 * gradient / np.sqrt(square + 1e-5)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="rms_prop_tf_like is a form of RMSprop; the optimizer kind is 'adam'"):
        TorchStyleOptimizer([variable], "adam", epsilon=1e-5, rms_prop_tf_like=True)


def test_keras_epsilon_placement_matches_keras_adam():
    """``torch_epsilon=False`` (DQN's setting) is Keras' Adam: epsilon added to sqrt(v)."""
    import keras

    rng = np.random.default_rng(2)
    initial = rng.normal(size=(3, 4)).astype(np.float32)
    ours, theirs = tf.Variable(initial), tf.Variable(initial)
    optimizer = TorchStyleOptimizer([ours], "adam", epsilon=1e-5, torch_epsilon=False)
    keras_adam = keras.optimizers.Adam(1e-2, epsilon=1e-5)
    for i in range(12):
        gradient = tf.constant((rng.normal(size=(3, 4)) * (1e-3 if i % 2 else 1.0)).astype(np.float32))
        optimizer.apply([gradient], [ours], tf.constant(1e-2))
        keras_adam.apply_gradients([(gradient, theirs)])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)


def test_explained_variance():
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(targets, targets) == 1.0
    assert explained_variance(np.full(4, 2.5), targets) == pytest.approx(0.0)
    assert np.isnan(explained_variance(targets, np.ones(4)))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("config_class, field, value", [
    (PPOConfig, "learning_rate", 0.0), (PPOConfig, "learning_rate", -1e-3), (A2CConfig, "learning_rate", 0.0),
    (PPOConfig, "gamma", 1.5), (A2CConfig, "gamma", -0.1), (PPOConfig, "gae_lambda", 1.01),
    (PPOConfig, "n_steps", 0), (PPOConfig, "n_epochs", 0), (PPOConfig, "clip_range", 0.0),
    (PPOConfig, "clip_range_vf", -0.2), (PPOConfig, "target_kl", 0.0), (PPOConfig, "max_grad_norm", 0.0),
    (PPOConfig, "ent_coef", -0.01), (PPOConfig, "vf_coef", -1.0), (A2CConfig, "rms_prop_eps", 0.0),
    (PPOConfig, "learning_rate_schedule", "cosine"), (PPOConfig, "clip_range_schedule", "exp"),
    (PPOConfig, "learning_rate", float("nan")), (A2CConfig, "rms_prop_tf_like", "yes"),
])
def test_invalid_hyperparameters_name_field_and_value(config_class, field, value):
    with pytest.raises(ValueError, match=field) as error:
        config_class(**{field: value})
    assert repr(value) in str(error.value) or str(value) in str(error.value)


def test_tf_like_rmsprop_needs_rmsprop():
    with pytest.raises(ValueError, match="rms_prop_tf_like=True needs use_rms_prop=True"):
        A2CConfig(rms_prop_tf_like=True, use_rms_prop=False)


def test_batch_larger_than_rollout_is_refused():
    with pytest.raises(ValueError, match=r"batch_size must be <= n_steps \* n_envs = 8 \* 2 = 16, got 32"):
        PPOConfig(n_steps=8, n_envs=2, batch_size=32)


def test_advantage_normalization_needs_two_transitions():
    with pytest.raises(ValueError, match="normalize_advantage"):
        A2CConfig(n_steps=1, n_envs=1, normalize_advantage=True)
    A2CConfig(n_steps=1, n_envs=1)  # fine without normalization


def test_wrong_type_and_unknown_setting():
    with pytest.raises(ValueError, match="n_steps"):
        PPOConfig.from_dict({"n_steps": "many"})
    with pytest.raises(ValueError, match="did you mean 'n_epochs'"):
        PPOConfig.from_dict({"n_epoch": 3})


def test_image_observations_cannot_be_normalized():
    from wrappers.fake_envs import RandomImageEnv

    with pytest.raises(ValueError, match="normalize_observation"):
        PPO(lambda: RandomImageEnv(shape=(1, 36, 36)), n_steps=8, batch_size=8, normalize_observation=True)


# ----------------------------------------------------------------------------- rollouts
class _Counter(gym.Env):
    """Observation = step count; truncated after 3 steps, terminated when the action is 1 at step 2."""

    observation_space = gym.spaces.Box(0, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, bool(action == 1 and self.t == 2), False, {}


def _counter_env():
    return gym.wrappers.TimeLimit(_Counter(), max_episode_steps=3)


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not():
    from agents_zoo.core.callbacks import BaseCallback

    agent = PPO(_counter_env, n_envs=2, n_steps=9, batch_size=6, seed=0)
    agent._last_obs = agent._reset_env()
    assert agent._collect_rollout(BaseCallback())  # the buffer, before any update changes the weights
    buffer = agent.buffer
    finals = buffer.observations[..., 0] == 2  # the step that produced observation 3 (or terminated)
    for t, e in zip(*np.nonzero(buffer.truncations)):
        assert buffer.observations[t, e, 0] == 2
        expected = agent._numpy_policy.forward(np.array([[3.0]], np.float32))[1][0]
        assert buffer.truncation_values[t, e] == pytest.approx(expected, rel=1e-5)
    assert (buffer.truncation_values[~buffer.truncations] == 0).all()
    assert (buffer.truncations | buffer.terminations)[finals].all()


def test_reward_fn_sees_raw_transitions_and_replaces_rewards():
    seen = {}

    def reward_fn(observations, actions, next_observations, dones):
        seen.update(observations=observations, actions=actions, next_observations=next_observations, dones=dones)
        return np.full(len(observations), 2.0)

    agent = PPO(_counter_env, n_envs=2, n_steps=6, batch_size=6, seed=0, normalize_observation=True,
                reward_fn=reward_fn)
    agent.learn(12)
    assert seen["observations"].shape == (12, 1) and seen["next_observations"].shape == (12, 1)
    assert seen["actions"].shape == (12,) and seen["dones"].shape == (12,)
    # Raw (not normalized) observations; the next observation of an ended episode is its final one.
    np.testing.assert_array_equal(seen["next_observations"][:, 0], seen["observations"][:, 0] + 1)
    assert (agent.buffer.rewards == 2.0).all()
    assert agent._episode_returns  # the env's own returns still reported


def test_reward_fn_with_wrong_shape_is_refused():
    agent = A2C(_counter_env, n_envs=2, seed=0, reward_fn=lambda o, a, n, d: np.zeros(3))
    with pytest.raises(ValueError, match=r"reward_fn returned shape \(3,\), expected \(10,\)"):
        agent.learn(10)


def test_continuous_actions_are_clipped_for_the_env_but_stored_unclipped():
    sent = []

    class Recorder(gym.Wrapper):
        def step(self, action):
            sent.append(np.array(action))
            return super().step(action)

    agent = A2C(lambda: Recorder(gym.make("Pendulum-v1")), n_envs=1, n_steps=16, seed=0, log_std_init=1.5)
    agent.learn(16)
    stored = agent.buffer.actions[:, 0, 0]
    assert np.abs(stored).max() > 2.0  # std e^1.5: some samples fall outside [-2, 2]
    np.testing.assert_allclose(np.concatenate(sent), np.clip(stored, -2, 2), rtol=1e-6)


def test_normalization_statistics_are_saved_and_loaded(tmp_path):
    agent = PPO("Pendulum-v1", n_envs=2, n_steps=16, batch_size=16, n_epochs=1, seed=0,
                normalize_observation=True, normalize_reward=True)
    agent.learn(64)
    observations = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    expected = agent.predict(observations, deterministic=True)[0]
    agent.save(tmp_path / "ppo.zip")
    loaded = PPO.load(tmp_path / "ppo.zip", env="Pendulum-v1")
    np.testing.assert_array_equal(loaded.observation_rms.mean, agent.observation_rms.mean)
    np.testing.assert_array_equal(loaded.return_rms.var, agent.return_rms.var)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], expected)
    assert not np.allclose(agent.observation_rms.mean, 0)


def test_new_episodes_restart_the_return_that_scales_rewards():
    # As SB3's VecNormalize.reset() zeroes its running returns: episodes cut by a reset (a new env
    # through set_env, a model loaded without its env's state) do not carry their return on.
    agent = PPO("Pendulum-v1", n_steps=16, batch_size=16, n_epochs=1, seed=0, normalize_reward=True).learn(32)
    assert agent._discounted_returns.all()
    agent._reset_env()
    assert not agent._discounted_returns.any()


class ScriptedEnv(gym.Env):
    """Observations, rewards and episode ends that do not depend on the actions: both libraries'
    rollouts see the same stream. Even episodes terminate after 7 steps, odd ones are truncated
    after 10; a reward spike at step 5."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    episode, t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        # A new episode only after steps: a vector env's reset at its construction starts none.
        self.episode, self.t = self.episode + (self.episode < 0 or self.t > 0), 0
        return self._observation(), {}

    def _observation(self):
        return np.array([self.t, 2.0 * (self.episode % 3), 5.0 * np.sin(self.t + self.episode)], np.float32)

    def step(self, action):
        self.t += 1
        reward = 3.0 * np.cos(0.7 * self.t + self.episode) + (10.0 if self.t == 5 else 0.0)
        terminated = self.episode % 2 == 0 and self.t == 7
        return self._observation(), float(reward), terminated, not terminated and self.t == 10, {}


def test_normalized_rollout_equals_sb3_vec_normalize_with_the_same_value_net():
    """Observation and reward normalization (VecNormalize's running statistics, its order of
    updates, clipping, the discounted return reset at episode ends) and the truncation bootstrap
    on normalized rewards: the same stream through SB3's PPO + VecNormalize and through ours,
    from SB3's weights, gives the same stored observations, rewards, advantages and returns."""
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from sb3_parity import load_sb3_weights

    torch.set_num_threads(1)
    n_envs, n_steps, gamma = 3, 32, 0.95
    settings = dict(n_steps=n_steps, batch_size=n_envs * n_steps, n_epochs=1, gamma=gamma, gae_lambda=0.9)
    venv = VecNormalize(DummyVecEnv([ScriptedEnv] * n_envs), gamma=gamma)
    reference = sb3.PPO("MlpPolicy", venv, seed=0, device="cpu",
                        policy_kwargs=dict(ortho_init=False, net_arch=[16, 16], log_std_init=-1.0), **settings)
    reference.set_logger(configure(None, []))
    agent = PPO(ScriptedEnv, n_envs=n_envs, seed=0, policy_hidden_sizes=[16, 16], log_std_init=-1.0,
                normalize_observation=True, normalize_reward=True, **settings)
    load_sb3_weights(agent, reference.policy)

    # One rollout each; the update after it changes neither the buffers nor the statistics.
    reference.learn(n_envs * n_steps)
    agent.learn(n_envs * n_steps)
    ours, buffer = agent.buffer, reference.rollout_buffer
    # SB3's update flattened the arrays it trains on env-major: back to (n_steps, n_envs, ...).
    theirs = {name: getattr(buffer, name).reshape(n_envs, n_steps, -1).swapaxes(0, 1).reshape(getattr(ours, name).shape)
              for name in ("observations", "values", "advantages", "returns")}
    theirs["rewards"] = buffer.rewards
    dones = ours.terminations | ours.truncations
    assert ours.terminations.any() and ours.truncations.any()
    np.testing.assert_allclose(ours.observations, theirs["observations"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.values, theirs["values"], rtol=1e-5, atol=1e-6)
    # SB3 adds gamma * V(final observation) to a truncated step's reward; ours bootstraps in GAE.
    np.testing.assert_allclose(ours.rewards[~ours.truncations], theirs["rewards"][~ours.truncations], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.advantages, theirs["advantages"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.returns, theirs["returns"], rtol=1e-4, atol=1e-5)
    # SB3 takes a float32 batch's moments in float32, ours in float64: equal to float32's precision.
    for mine, other in ((agent.observation_rms, venv.obs_rms), (agent.return_rms, venv.ret_rms)):
        np.testing.assert_allclose(mine.mean, other.mean, rtol=1e-6)
        np.testing.assert_allclose(mine.var, other.var, rtol=1e-6)
        assert mine.count == other.count
    assert dones.sum() > n_envs
