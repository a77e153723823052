"""PPO: the loss against hand-computed NumPy values, smoke runs over spaces and policies,
save/load, determinism, target-KL early stop and the smaller last minibatch."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from agents_zoo.agents.ppo import PPO, ppo_loss
from agents_zoo.core.policies import ActorCritic

FAST = dict(jit_compile=False)


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _tiny_policy(action_space):
    """obs dim 2 -> tanh(3) -> head, weights fixed by a seeded generator (not by the initializer)."""
    model = ActorCritic(gym.spaces.Box(-1, 1, (2,), np.float32), action_space, (3,), "tanh", log_std_init=-0.3)
    rng = np.random.default_rng(42)
    pieces = model.split(model.params.numpy())
    weights = pieces if model.discrete else pieces[:-1]  # log_std keeps log_std_init
    for piece in weights:
        piece[...] = rng.normal(scale=0.7, size=piece.shape)
    model.params.assign(np.concatenate([piece.reshape(-1) for piece in pieces]))
    return model


def _numpy_forward(model, observations):
    """The layout by hand: the first layer's kernel is [W_pi | W_vf], then the pi and vf heads."""
    pieces = model.split(model.params.numpy())
    first_kernel, first_bias, policy_kernel, policy_bias, value_kernel, value_bias = pieces[:6]
    hidden = np.tanh(observations @ first_kernel + first_bias)
    return hidden[:, :3] @ policy_kernel + policy_bias, (hidden[:, 3:] @ value_kernel + value_bias)[:, 0]


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("clip_range_vf", [None, 0.1])
def test_ppo_loss_matches_hand_computation(discrete, clip_range_vf):
    action_space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1, 1, (2,), np.float32)
    model = _tiny_policy(action_space)
    rng = np.random.default_rng(0)
    n = 6
    observations = rng.normal(size=(n, 2)).astype(np.float32)
    actions = rng.integers(0, 3, n) if discrete else rng.normal(size=(n, 2)).astype(np.float32)
    old_values = rng.normal(size=n).astype(np.float32)
    old_log_probs = rng.normal(-1.0, 0.3, size=n).astype(np.float32)
    advantages = rng.normal(size=n).astype(np.float32)
    returns = rng.normal(size=n).astype(np.float32)
    clip_range, ent_coef, vf_coef = 0.2, 0.01, 0.5

    loss = ppo_loss(model, observations, actions, old_values, old_log_probs, advantages, returns,
                    tf.constant(clip_range), None if clip_range_vf is None else tf.constant(clip_range_vf),
                    ent_coef, vf_coef, normalize_advantage=True)

    outputs, values = _numpy_forward(model, observations)
    if discrete:
        log_p = _log_softmax(outputs)
        log_probs = log_p[np.arange(n), actions]
        entropy = -(np.exp(log_p) * log_p).sum(axis=1)
    else:
        log_std = np.full(2, -0.3)
        log_probs = (-0.5 * ((actions - outputs) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(1)
        entropy = np.full(n, (log_std + 0.5 * np.log(2 * np.pi * np.e)).sum())
    normalized = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)  # torch's unbiased std
    ratio = np.exp(log_probs - old_log_probs)
    policy_loss = -np.minimum(ratio * normalized, np.clip(ratio, 0.8, 1.2) * normalized).mean()
    if clip_range_vf is not None:
        values = old_values + np.clip(values - old_values, -clip_range_vf, clip_range_vf)
    value_loss = ((returns - values) ** 2).mean()
    entropy_loss = -entropy.mean()
    np.testing.assert_allclose(loss.policy_loss, policy_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.value_loss, value_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.entropy_loss, entropy_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.total, policy_loss + ent_coef * entropy_loss + vf_coef * value_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.approx_kl, ((ratio - 1) - np.log(ratio)).mean(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(loss.clip_fraction, (np.abs(ratio - 1) > clip_range).mean())


def test_smoke_discrete_logs_sb3_diagnostics():
    agent = PPO("CartPole-v1", n_envs=2, n_steps=32, batch_size=16, n_epochs=2, seed=0, **FAST)
    agent.learn(128)
    logged = agent.logger.history[-1]
    for key in ("train/approx_kl", "train/clip_fraction", "train/explained_variance", "train/policy_gradient_loss",
                "train/value_loss", "train/entropy_loss", "train/learning_rate", "train/clip_range", "time/fps"):
        assert np.isfinite(logged[key]), key
    assert logged["train/n_updates"] == 2 * 2  # rollouts x epochs, as SB3 counts them


def test_smoke_cnn_policy_on_images():
    from wrappers.fake_envs import RandomImageEnv

    agent = PPO(lambda: RandomImageEnv(shape=(1, 36, 36), episode_length=10), n_envs=2, n_steps=8, batch_size=8,
                n_epochs=1, seed=0, **FAST)
    assert agent._numpy_policy is None  # CNN policies act through one TF call per step
    agent.learn(32)
    actions, _ = agent.predict(np.zeros((3, 1, 36, 36), np.uint8))
    assert actions.shape == (3,)


def test_linear_schedules_reach_zero_and_smaller_last_minibatch_is_used():
    agent = PPO("Pendulum-v1", n_envs=1, n_steps=24, batch_size=16, n_epochs=1, learning_rate=1e-3,
                learning_rate_schedule="linear", clip_range_schedule="linear", seed=0)  # 24 = 16 + 8: no XLA
    agent.learn(48)
    history = agent.logger.history
    assert history[0]["train/learning_rate"] == pytest.approx(5e-4) and history[-1]["train/learning_rate"] == 0.0
    assert history[0]["train/clip_range"] == pytest.approx(0.1)
    assert history[-1]["train/n_updates"] == 2 * 1  # rollouts x epochs


def test_target_kl_stops_the_epochs_early():
    agent = PPO("CartPole-v1", n_envs=2, n_steps=32, batch_size=16, n_epochs=10, learning_rate=3e-2, target_kl=1e-6,
                seed=0, **FAST)
    agent.learn(64)
    assert agent.logger.history[-1]["train/n_updates"] < 10  # epochs of the one rollout


def test_save_load_gives_identical_predictions_and_learning_continues(tmp_path):
    agent = PPO("Pendulum-v1", n_envs=2, n_steps=16, batch_size=16, n_epochs=2, seed=3, **FAST)
    agent.learn(64)
    observations = np.random.default_rng(1).uniform(-1, 1, (6, 3)).astype(np.float32)
    agent.save(tmp_path / "ppo.zip")
    loaded = PPO.load(tmp_path / "ppo.zip", env="Pendulum-v1")
    for deterministic in (True, False):
        np.testing.assert_array_equal(loaded.predict(observations, deterministic=deterministic)[0],
                                      agent.predict(observations, deterministic=deterministic)[0])  # RNG state saved too
    before = [v.numpy().copy() for v in loaded.policy.trainable_variables]
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 96
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, loaded.policy.trainable_variables))


def test_same_seed_gives_identical_weights_and_returns():
    def run():
        agent = PPO("CartPole-v1", n_envs=2, n_steps=32, batch_size=32, n_epochs=2, seed=7, deterministic_ops=True,
                    **FAST)
        agent.learn(128)
        return [v.numpy() for v in agent.policy.variables], list(agent._episode_returns)

    (weights_a, returns_a), (weights_b, returns_b) = run(), run()
    assert returns_a == returns_b
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def test_xla_update_matches_plain_graph_update():
    agents = [PPO("CartPole-v1", n_envs=2, n_steps=16, batch_size=16, n_epochs=2, seed=5, jit_compile=jit)
              for jit in (False, True)]
    assert [a._uses_jit() for a in agents] == [False, True]
    for agent in agents:
        agent.learn(32)
    for plain, xla in zip(agents[0].policy.variables, agents[1].policy.variables):
        np.testing.assert_allclose(plain.numpy(), xla.numpy(), rtol=1e-3, atol=1e-5)
