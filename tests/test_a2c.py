"""A2C: the loss against hand-computed NumPy values, optimizer choice, smoke runs, save/load
and determinism."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import numpy as np
import pytest

from agents_zoo.agents.a2c import A2C, a2c_loss
from test_ppo import _log_softmax, _numpy_forward, _tiny_policy

FAST = dict(jit_compile=False)


@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_a2c_loss_matches_hand_computation(normalize_advantage):
    model = _tiny_policy(gym.spaces.Discrete(3))
    rng = np.random.default_rng(5)
    n = 7
    observations = rng.normal(size=(n, 2)).astype(np.float32)
    actions = rng.integers(0, 3, n)
    advantages = rng.normal(size=n).astype(np.float32)
    returns = rng.normal(size=n).astype(np.float32)
    loss = a2c_loss(model, observations, actions, advantages, returns, ent_coef=0.01, vf_coef=0.25,
                    normalize_advantage=normalize_advantage)
    logits, values = _numpy_forward(model, observations)
    log_p = _log_softmax(logits)
    if normalize_advantage:
        advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
    policy_loss = -(advantages * log_p[np.arange(n), actions]).mean()
    value_loss = ((returns - values) ** 2).mean()
    entropy_loss = (np.exp(log_p) * log_p).sum(axis=1).mean()
    np.testing.assert_allclose(loss.policy_loss, policy_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.value_loss, value_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.entropy_loss, entropy_loss, rtol=1e-5)
    np.testing.assert_allclose(loss.total, policy_loss + 0.01 * entropy_loss + 0.25 * value_loss, rtol=1e-5)


def test_defaults_are_sb3s_and_optimizer_follows_use_rms_prop():
    agent = A2C("CartPole-v1", seed=0, **FAST)
    cfg = agent.config
    assert (cfg.learning_rate, cfg.n_steps, cfg.gamma, cfg.gae_lambda, cfg.ent_coef, cfg.vf_coef, cfg.max_grad_norm,
            cfg.rms_prop_eps, cfg.use_rms_prop, cfg.normalize_advantage) == (7e-4, 5, 0.99, 1.0, 0.0, 0.5, 0.5, 1e-5,
                                                                            True, False)
    assert agent.optimizer.kind == "rmsprop" and agent.optimizer.rms_alpha == 0.99
    assert len(agent.policy.trainable_variables) == 1  # MLP parameters in one flat variable
    assert A2C("CartPole-v1", use_rms_prop=False, seed=0, **FAST).optimizer.kind == "adam"


def test_smoke_continuous_with_normalization_and_save_load(tmp_path):
    agent = A2C("Pendulum-v1", n_envs=4, n_steps=8, seed=1, normalize_observation=True, normalize_reward=True, **FAST)
    agent.learn(160)
    assert np.isfinite(agent.logger.history[-1]["train/value_loss"])
    agent.save(tmp_path / "a2c.zip")
    loaded = A2C.load(tmp_path / "a2c.zip", env="Pendulum-v1")
    observations = np.random.default_rng(2).uniform(-1, 1, (4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0],
                                  agent.predict(observations, deterministic=True)[0])
    for a, b in zip(loaded.optimizer.variables, agent.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.learn(64, reset_num_timesteps=False)


def test_same_seed_gives_identical_weights():
    def run():
        agent = A2C("CartPole-v1", n_envs=4, seed=11, deterministic_ops=True, **FAST)
        agent.learn(200)
        return [v.numpy() for v in agent.policy.variables], agent.evaluate(2, deterministic=False).returns

    (weights_a, returns_a), (weights_b, returns_b) = run(), run()
    np.testing.assert_array_equal(returns_a, returns_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rms_prop_tf_like", [True, False])
def test_a2c_updates_equal_sb3s_from_the_same_weights_and_rollouts(rms_prop_tf_like):
    """RL-Zoo's Atari A2C recipe on a small Box env (n_steps 5, vf_coef 0.25, ent_coef 0.01,
    gradient clipping 0.5, RMSpropTFLike, or torch's RMSprop): three rollouts that SB3 collected,
    each trained on by SB3 and by ours from the same weights. The loss terms of each update and the
    weights after it are SB3's, so the optimizer state carried between updates is too."""
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_parity import load_sb3_weights, sb3_pieces_for_ours
    from test_gsde import BoxEnv

    torch.set_num_threads(1)
    n_envs, n_steps = 4, 5
    settings = dict(n_steps=n_steps, learning_rate=7e-4, gamma=0.99, gae_lambda=1.0, ent_coef=0.01, vf_coef=0.25,
                    max_grad_norm=0.5)
    optimizer = (dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0))
                 if rms_prop_tf_like else {})
    reference = sb3.A2C("MlpPolicy", DummyVecEnv([BoxEnv] * n_envs), seed=0, device="cpu",
                        policy_kwargs=dict(ortho_init=False, activation_fn=torch.nn.ReLU, net_arch=[32, 32], **optimizer),
                        **settings)
    reference.set_logger(configure(None, []))
    _, callback = reference._setup_learn(n_envs * n_steps * 3)
    callback.on_training_start(locals(), globals())
    agent = A2C(BoxEnv, n_envs=n_envs, seed=0, policy_hidden_sizes=[32, 32], activation="relu", network_init="torch",
                rms_prop_eps=1e-5, rms_prop_tf_like=rms_prop_tf_like, **settings, **FAST)
    load_sb3_weights(agent, reference.policy)
    for update in range(3):
        assert reference.collect_rollouts(reference.env, callback, reference.rollout_buffer, n_steps)
        buffer, theirs = agent.buffer, reference.rollout_buffer
        for name in ("observations", "actions", "values", "log_probs", "advantages", "returns"):
            getattr(buffer, name)[:] = getattr(theirs, name).reshape(getattr(buffer, name).shape)
        ours = agent._train()
        reference.train()
        logged = reference.logger.name_to_value
        for name in ("policy_loss", "value_loss", "entropy_loss"):
            np.testing.assert_allclose(ours[name], logged[f"train/{name}"], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name}, update {update}")
        for index, (mine, other) in enumerate(zip(agent.policy.split(agent.policy.params.numpy()),
                                                  sb3_pieces_for_ours(reference.policy))):
            np.testing.assert_allclose(mine, other, rtol=1e-4, atol=1e-6,
                                       err_msg=f"weight piece {index} after update {update}")


FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


@pytest.mark.parametrize("frame_shape", [(4, 84, 84), (84, 84, 4)])  # channel-first and channel-last
@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_loss_and_gradients_from_acting_layers_equal_a_fresh_forward(compute_dtype, frame_shape):
    """``reuse_acting_layers``: the update's backward pass on the CNN layer outputs the rollout's
    acting computed gives the loss and every gradient of the update that runs the CNN again."""
    import tensorflow as tf

    from agents_zoo.core.policies import ActorCritic

    space = gym.spaces.Box(0, 255, frame_shape, np.uint8)
    policy = ActorCritic(space, gym.spaces.Discrete(6), (), "tanh", seed=0, compute_dtype=compute_dtype)
    policy.acting_weights()  # the acting copies, as the agent makes them
    rng = np.random.default_rng(0)
    n = 12
    observations = tf.constant(rng.integers(0, 256, (n, *frame_shape), dtype=np.uint8))
    actions = rng.integers(0, 6, n)
    advantages, returns = rng.normal(size=(2, n)).astype(np.float32)
    _, _, layers_out = policy.acting_heads_and_layers(observations)

    def loss_and_gradients(layers):
        with tf.GradientTape() as tape:
            loss = a2c_loss(policy, observations, actions, advantages, returns, 0.01, 0.25, False, layers)
        return loss.total.numpy(), tape.gradient(loss.total, policy.trainable_variables)

    (fresh_loss, fresh), (reused_loss, reused) = loss_and_gradients(()), loss_and_gradients(layers_out)
    assert len(fresh) == len(reused) == 12  # 4 CNN layers' and the 2 heads' kernels and biases
    np.testing.assert_allclose(reused_loss, fresh_loss, rtol=1e-6)
    for a, b in zip(reused, fresh):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7 * float(tf.reduce_max(tf.abs(b))))


@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_reusing_acting_layers_trains_the_same_weights(compute_dtype):
    """One vector step per rollout (n_steps=1), so acting and the recomputing update run the CNN on
    the same batch of 10 frames and round alike on any CPU; RMSprop would magnify the last-bit
    differences that another batch size may give."""
    from wrappers.fake_envs import RandomImageEnv

    def trained(reuse):
        agent = A2C(lambda: RandomImageEnv(shape=FRAMES.shape, episode_length=20), seed=0, n_envs=10, n_steps=1,
                    compute_dtype=compute_dtype, reuse_acting_layers=reuse, **FAST)
        agent.learn(40)
        # The update's inputs: observations, actions, advantages, returns, learning rate, and with
        # reuse the 4 layer outputs (3 convolutions and the features) of the rollout's 10 frames.
        signature = agent._update_concrete[0]
        assert len(signature) == (9 if reuse else 5)
        if reuse:
            assert [shape for _, shape in signature[5:]] == [(10, 20, 20, 32), (10, 9, 9, 64), (10, 7, 7, 64),
                                                              (10, 512)]
        assert agent._rollout_layers == []  # released once the update took them
        return [v.numpy() for v in agent.policy.trainable_variables]

    for a, b in zip(trained(True), trained(False)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_a_rollout_cut_short_keeps_no_layers():
    from agents_zoo.core.callbacks import BaseCallback
    from wrappers.fake_envs import RandomImageEnv

    class StopAtThirdStep(BaseCallback):
        def on_step(self) -> bool:
            return self.num_timesteps < 6

    agent = A2C(lambda: RandomImageEnv(shape=FRAMES.shape, episode_length=20), seed=0, n_envs=2, n_steps=5, **FAST)
    agent.learn(10, callback=StopAtThirdStep())
    assert agent.num_timesteps == 6 and agent._iteration == 0  # stopped inside the first rollout
    assert agent._rollout_layers == []


def test_reuse_acting_layers_must_be_a_bool():
    with pytest.raises(ValueError, match="reuse_acting_layers"):
        A2C("CartPole-v1", reuse_acting_layers="yes")
