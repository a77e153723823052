"""gSDE (generalized state-dependent exploration, Raffin, Kober & Stulp 2021) in PPO and A2C:
the distribution's math against hand-computed values and SB3's StateDependentNoiseDistribution,
the TF loss against the NumPy acting path, when the exploration matrices are redrawn, actions as
a function of the latent, save/load and exact resume, config validation."""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.agents.a2c import A2C
from agents_zoo.agents.ppo import PPO, PPOConfig
from agents_zoo.core.distributions import StateDependentNoise
from sb3_parity import load_sb3_weights, sb3_gradient_pieces, sb3_pieces_for_ours

# A small case: 2 samples, 3 latent features, 2 action dimensions; log_std on both sides of 0
# (both branches of expln).
LATENT = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.4]], dtype=np.float32)
MEAN = np.array([[0.1, -0.2], [0.4, 0.0]], dtype=np.float32)
LOG_STD = {True: np.array([[-0.5, 0.3], [0.0, -1.2], [0.7, 0.1]], dtype=np.float32),  # full_std
           False: np.array([[-0.5], [0.3], [0.8]], dtype=np.float32)}
ACTIONS = {False: np.array([[0.5, -1.5], [2.0, 0.1]], dtype=np.float32),  # Gaussian actions
           True: np.array([[0.3, -0.6], [0.9, 0.1]], dtype=np.float32)}   # squashed: in (-1, 1)
CASES = [(full_std, use_expln, squash) for full_std in (True, False) for use_expln in (False, True)
         for squash in (False, True)]
EPSILON = 1e-6


def hand_std(log_std: float, use_expln: bool) -> float:
    if use_expln:
        return math.exp(log_std) if log_std <= 0 else math.log1p(log_std + EPSILON) + 1.0
    return math.exp(log_std)


def hand_log_prob_and_entropy(full_std: bool, use_expln: bool, squash: bool) -> tuple[list[float], list[float]]:
    """The formulas written out one scalar at a time, in float64."""
    log_std, actions = LOG_STD[full_std], ACTIONS[squash]
    log_probs, entropies = [], []
    for row in range(len(LATENT)):
        log_prob, entropy = 0.0, 0.0
        for j in range(MEAN.shape[1]):
            variance = sum(float(LATENT[row, i]) ** 2 * hand_std(float(log_std[i, j if full_std else 0]), use_expln) ** 2
                           for i in range(LATENT.shape[1]))
            sigma = math.sqrt(variance + EPSILON)
            a = float(actions[row, j])
            u = math.atanh(a) if squash else a
            log_prob += -(u - float(MEAN[row, j])) ** 2 / (2 * sigma**2) - math.log(sigma) - 0.5 * math.log(2 * math.pi)
            if squash:
                log_prob -= math.log(1.0 - a**2 + EPSILON)  # log |d tanh(u) / du| with tanh(u) = a
            entropy += 0.5 + 0.5 * math.log(2 * math.pi) + math.log(sigma)
        log_probs.append(log_prob)
        entropies.append(-log_prob if squash else entropy)
    return log_probs, entropies


@pytest.mark.parametrize("full_std,use_expln,squash", CASES)
def test_log_prob_and_entropy_match_hand_computed_values(full_std, use_expln, squash):
    sde = StateDependentNoise(2, full_std=full_std, use_expln=use_expln, squash_output=squash)
    expected_log_probs, expected_entropies = hand_log_prob_and_entropy(full_std, use_expln, squash)
    log_probs, entropies = sde.log_prob_and_entropy(tf.constant(MEAN), tf.constant(LOG_STD[full_std]),
                                                    tf.constant(LATENT), tf.constant(ACTIONS[squash]))
    np.testing.assert_allclose(log_probs.numpy(), expected_log_probs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(entropies.numpy(), expected_entropies, rtol=1e-5, atol=1e-5)
    np_log_probs = sde.np_log_prob(MEAN, LOG_STD[full_std], LATENT, ACTIONS[squash])
    np.testing.assert_allclose(np_log_probs, expected_log_probs, rtol=1e-5, atol=1e-5)
    assert np_log_probs.dtype == np.float32


@pytest.mark.parametrize("use_expln", [False, True])
def test_std_shape_and_values(use_expln):
    for full_std in (True, False):
        sde = StateDependentNoise(2, full_std=full_std, use_expln=use_expln)
        log_std = LOG_STD[full_std]
        assert sde.log_std_shape(3) == log_std.shape
        expected = [[hand_std(float(log_std[i, j if full_std else 0]), use_expln) for j in range(2)] for i in range(3)]
        np.testing.assert_allclose(sde.std(tf.constant(log_std)).numpy(), expected, rtol=1e-6)
        np.testing.assert_allclose(sde.np_std(log_std), expected, rtol=1e-6)


@pytest.mark.parametrize("full_std,use_expln,squash", CASES)
def test_matches_sb3_state_dependent_noise_distribution(full_std, use_expln, squash):
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3.common.distributions")
    reference = sb3.StateDependentNoiseDistribution(2, full_std=full_std, use_expln=use_expln, squash_output=squash)
    reference.latent_sde_dim = LATENT.shape[1]
    log_std = LOG_STD[full_std]
    rng = np.random.default_rng(0)
    sde = StateDependentNoise(2, full_std=full_std, use_expln=use_expln, squash_output=squash)
    matrices = sde.np_sample_matrices(log_std, len(LATENT), rng)
    reference.proba_distribution(torch.tensor(MEAN), torch.tensor(log_std), torch.tensor(LATENT))
    reference.exploration_matrices = torch.tensor(matrices)
    reference.exploration_mat = torch.tensor(matrices[0])

    np.testing.assert_allclose(sde.np_std(log_std), reference.get_std(torch.tensor(log_std)).numpy(), rtol=1e-6)
    actions = ACTIONS[squash]
    log_probs, entropies = sde.log_prob_and_entropy(tf.constant(MEAN), tf.constant(log_std), tf.constant(LATENT),
                                                    tf.constant(actions))
    reference_log_probs = reference.log_prob(torch.tensor(actions)).numpy()
    np.testing.assert_allclose(log_probs.numpy(), reference_log_probs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sde.np_log_prob(MEAN, log_std, LATENT, actions), reference_log_probs, rtol=1e-5, atol=1e-5)
    if squash:
        assert reference.entropy() is None  # SB3's PPO and A2C then use -log_prob: so does our entropy
        np.testing.assert_allclose(entropies.numpy(), -reference_log_probs, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(entropies.numpy(), reference.entropy().numpy(), rtol=1e-5, atol=1e-5)

    # The same exploration matrices give the same actions: one matrix per row, or the first for all rows.
    ours, ours_log_probs = sde.np_sample(MEAN, LATENT, log_std, matrices, deterministic=False)
    np.testing.assert_allclose(ours, reference.sample().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_log_probs, reference.log_prob(torch.tensor(ours)).numpy(), rtol=1e-5, atol=1e-5)
    single, _ = sde.np_sample(MEAN[:1], LATENT[:1], log_std, matrices, deterministic=False)
    reference.proba_distribution(torch.tensor(MEAN[:1]), torch.tensor(log_std), torch.tensor(LATENT[:1]))
    np.testing.assert_allclose(single, reference.sample().numpy(), rtol=1e-5, atol=1e-6)
    deterministic, _ = sde.np_sample(MEAN, LATENT, log_std, matrices, deterministic=True)
    reference.proba_distribution(torch.tensor(MEAN), torch.tensor(log_std), torch.tensor(LATENT))
    np.testing.assert_allclose(deterministic, reference.mode().numpy(), rtol=1e-6)


def test_matrices_are_drawn_from_the_std():
    sde = StateDependentNoise(2, full_std=True)
    log_std = LOG_STD[True]
    matrices = sde.np_sample_matrices(log_std, 20_000, np.random.default_rng(1))
    assert matrices.shape == (20_000, 3, 2) and matrices.dtype == np.float32
    np.testing.assert_allclose(matrices.std(axis=0), np.exp(log_std), rtol=0.03)
    np.testing.assert_allclose(matrices.mean(axis=0), 0.0, atol=0.05)


def test_gradient_reaches_log_std_and_not_the_latent():
    sde = StateDependentNoise(2)
    latent, log_std, mean = tf.Variable(LATENT), tf.Variable(LOG_STD[True]), tf.Variable(MEAN)
    with tf.GradientTape() as tape:
        log_probs, entropies = sde.log_prob_and_entropy(mean, log_std, latent, tf.constant(ACTIONS[False]))
        total = tf.reduce_sum(log_probs) + tf.reduce_sum(entropies)
    grad_latent, grad_log_std, grad_mean = tape.gradient(total, [latent, log_std, mean])
    assert grad_latent is None  # learn_features=False: the noise does not train the features
    assert np.abs(grad_log_std.numpy()).min() > 0 and np.abs(grad_mean.numpy()).min() > 0


# ----------------------------------------------------------------------------- in the agents
def sde_agent(cls=PPO, **overrides):
    config = dict(n_envs=2, n_steps=16, use_sde=True, sde_sample_freq=4)
    if cls is PPO:
        config.update(batch_size=16, n_epochs=2)
    config.update(overrides)
    return cls("Pendulum-v1", seed=3, **config)


@pytest.mark.parametrize("cls", [PPO, A2C])
@pytest.mark.parametrize("full_std,squash", [(True, False), (False, True)])
def test_rollout_log_probs_match_the_loss_log_probs(cls, full_std, squash, monkeypatch):
    """The NumPy acting path and the TF loss compute the same log pi(a | s): PPO's first ratio is 1."""
    agent = sde_agent(cls, full_std=full_std, squash_output=squash, policy_hidden_sizes=(8, 5))
    assert agent.policy.split(agent.policy.params.numpy())[-1].shape == (5, 1)  # (last hidden, 1 action or 1)
    monkeypatch.setattr(agent, "_train", lambda: {})
    agent.learn(agent.config.rollout_size)
    buffer = agent.buffer
    observations = buffer.observations.reshape(-1, *buffer.observations.shape[2:])
    actions = buffer.actions.reshape(-1, 1)
    policy_output, values = agent.policy(tf.constant(observations))
    log_probs, _ = agent.policy.log_prob_and_entropy(policy_output, tf.constant(actions))
    np.testing.assert_allclose(log_probs.numpy(), buffer.log_probs.reshape(-1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(values.numpy(), buffer.values.reshape(-1), rtol=1e-5, atol=1e-5)
    if squash:
        assert np.abs(buffer.actions).max() <= 1.0


def test_log_std_matrix_is_trained_and_full_std_shapes():
    agent = sde_agent(policy_hidden_sizes=(7,), log_std_init=-1.0)
    log_std = agent.policy.split(agent.policy.params.numpy())[-1]
    assert log_std.shape == (7, 1)
    np.testing.assert_array_equal(log_std, -1.0)
    agent.learn(64)
    assert not np.array_equal(agent.policy.split(agent.policy.params.numpy())[-1], log_std)
    no_hidden = PPO(observation_space=spaces.Box(-1, 1, (4,)), action_space=spaces.Box(-1, 1, (3,)), use_sde=True,
                    policy_hidden_sizes=(), n_envs=5)
    assert no_hidden.policy.split(no_hidden.policy.params.numpy())[-1].shape == (4, 3)  # the observations are the latent
    assert no_hidden._exploration_matrices.shape == (5, 4, 3)


@pytest.mark.parametrize("sde_sample_freq,expected_steps", [(4, (0, 4, 8)), (3, (0, 3, 6, 9)), (1, tuple(range(10))),
                                                            (-1, (0,)), (0, (0,)), (10, (0,)), (25, (0,))])
def test_noise_is_redrawn_at_rollout_start_and_every_sde_sample_freq_steps(sde_sample_freq, expected_steps,
                                                                            monkeypatch):
    agent = sde_agent(A2C, n_steps=10, sde_sample_freq=sde_sample_freq)
    draws: list[int] = []
    original = agent.reset_noise

    def counting_reset_noise():
        draws.append(agent.num_timesteps)
        original()

    monkeypatch.setattr(agent, "reset_noise", counting_reset_noise)
    rollouts, n_envs = 3, agent.n_envs
    agent.learn(rollouts * agent.config.rollout_size)
    assert draws == [(r * agent.config.n_steps + step) * n_envs for r in range(rollouts) for step in expected_steps]


def test_matrices_are_held_between_draws_and_actions_follow_the_latent():
    agent = sde_agent(n_steps=12, sde_sample_freq=4)
    seen: list[np.ndarray] = []
    original = agent.reset_noise
    agent.reset_noise = lambda: (original(), seen.append(agent._exploration_matrices.copy()))
    actions_vs_latent: list[bool] = []
    numpy_policy = agent._numpy_policy
    original_forward = numpy_policy.forward_with_latent

    def checking_forward(observations):
        mean, values, latent = original_forward(observations)
        if len(observations) == agent.n_envs:
            actions_vs_latent.append((mean, latent, agent._exploration_matrices.copy()))
        return mean, values, latent

    numpy_policy.forward_with_latent = checking_forward
    agent.learn(agent.config.rollout_size)
    assert len(seen) == 3 and not np.array_equal(seen[0], seen[1])
    # Each step used the matrices drawn last: steps 0-3 the first, 4-7 the second, 8-11 the third.
    for step, (_, _, matrices) in enumerate(actions_vs_latent[:12]):
        np.testing.assert_array_equal(matrices, seen[step // 4])
    # The buffer's actions are mean + latent @ E_env exactly: a deterministic function of the latent.
    for step, (mean, latent, matrices) in enumerate(actions_vs_latent[:12]):
        expected = mean + np.einsum("bl,bla->ba", latent, matrices)
        np.testing.assert_allclose(agent.buffer.actions[step], expected, rtol=1e-6, atol=1e-6)


def test_predict_is_a_deterministic_function_of_the_observation_between_draws():
    agent = sde_agent()
    agent.learn(64)
    observations = agent._last_obs
    state = agent.rng.bit_generator.state
    first = agent.predict(observations)[0]
    np.testing.assert_array_equal(agent.predict(observations)[0], first)
    assert agent.rng.bit_generator.state == state  # acting draws nothing: the noise is in the matrices
    mean, _, latent = agent._numpy_policy.forward_with_latent(observations.astype(np.float32))
    noise = np.einsum("bl,bla->ba", latent, agent._exploration_matrices)
    np.testing.assert_allclose(first, np.clip(mean + noise, -2.0, 2.0), rtol=1e-6, atol=1e-6)
    # One observation (not one per env) uses the first env's matrix.
    np.testing.assert_allclose(agent.predict(observations[1])[0], np.clip(mean[1] + latent[1] @ agent._exploration_matrices[0],
                                                                         -2.0, 2.0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(agent.predict(observations, deterministic=True)[0], np.clip(mean, -2, 2), rtol=1e-6)
    agent.reset_noise()
    assert not np.array_equal(agent.predict(observations)[0], first)


def test_squashed_actions_are_rescaled_to_the_bounds():
    agent = sde_agent(squash_output=True, log_std_init=2.0)
    observations = agent._reset_env()
    mean, _, latent = agent._numpy_policy.forward_with_latent(observations.astype(np.float32))
    squashed = np.tanh(mean + np.einsum("bl,bla->ba", latent, agent._exploration_matrices))
    low, high = agent.action_space.low, agent.action_space.high
    np.testing.assert_allclose(agent.predict(observations)[0], low + 0.5 * (squashed + 1.0) * (high - low), rtol=1e-5)
    np.testing.assert_allclose(agent.predict(observations, deterministic=True)[0],
                               low + 0.5 * (np.tanh(mean) + 1.0) * (high - low), rtol=1e-5)


@pytest.mark.parametrize("cls,overrides", [(PPO, {}), (A2C, {"squash_output": True, "full_std": False,
                                                             "use_expln": True, "normalize_observation": True})])
def test_save_load_reproduces_the_next_stochastic_action(cls, overrides, tmp_path):
    agent = sde_agent(cls, sde_sample_freq=5, **overrides)
    agent.learn(3 * agent.config.rollout_size + 10)  # stops mid-rollout: the matrices are not a rollout's first
    path = agent.save(tmp_path / "gsde.zip")
    observations = agent._last_obs
    loaded = cls.load(path)
    np.testing.assert_array_equal(loaded._exploration_matrices, agent._exploration_matrices)
    for _ in range(2):
        np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])
    agent.reset_noise()
    loaded.reset_noise()  # the RNG state came back too: the next draw is the same
    np.testing.assert_array_equal(loaded._exploration_matrices, agent._exploration_matrices)
    np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])


def test_loaded_onto_more_envs_keeps_fresh_matrices(tmp_path):
    agent = sde_agent()
    path = agent.save(tmp_path / "gsde.zip")
    from agents_zoo.core.envs import make_vec_env

    loaded = PPO.load(path, env=make_vec_env("Pendulum-v1", 3, seed=0))
    assert loaded._exploration_matrices.shape == (3, 64, 1)
    loaded.learn(loaded.config.rollout_size)


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path):
    config = dict(n_envs=2, n_steps=32, batch_size=32, n_epochs=2, use_sde=True, sde_sample_freq=5)
    total, every = 512, 128

    def fingerprint(agent):
        return (agent.num_timesteps, agent.policy.params.numpy(), agent.rng.bit_generator.state["state"],
                agent._exploration_matrices, np.asarray(agent._last_obs))

    uninterrupted = PPO("Pendulum-v1", seed=5, deterministic_ops=True, **config)
    uninterrupted.learn(total, checkpoint_every=every, checkpoint_path=tmp_path / "u.zip")
    first = PPO("Pendulum-v1", seed=5, deterministic_ops=True, **config)
    first.learn(total, checkpoint_every=every, checkpoint_path=tmp_path / "ck.zip",
                callback=lambda agent: agent.num_timesteps < total // 2)
    resumed = PPO.load(tmp_path / "ck.zip", env="Pendulum-v1")
    assert 0 < resumed.num_timesteps < total
    resumed.learn(total - resumed.num_timesteps, reset_num_timesteps=False)
    (steps, params, rng, matrices, last_obs), expected = fingerprint(resumed), fingerprint(uninterrupted)
    assert (steps, rng) == (expected[0], expected[2])
    for ours, theirs in zip((params, matrices, last_obs), (expected[1], expected[3], expected[4])):
        np.testing.assert_array_equal(ours, theirs)


def test_jit_compiled_update_matches_the_plain_one():
    agents = [sde_agent(n_steps=16, batch_size=16, squash_output=True, jit_compile=jit) for jit in (False, True)]
    for agent in agents:
        agent.learn(64)
    np.testing.assert_allclose(agents[0].policy.params.numpy(), agents[1].policy.params.numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- validation
def test_use_sde_needs_box_actions():
    with pytest.raises(ValueError, match=r"use_sde needs Box \(continuous\) actions, got Discrete\(2\)"):
        PPO("CartPole-v1", use_sde=True)


def test_use_sde_needs_vector_observations():
    with pytest.raises(ValueError, match="use_sde needs vector observations"):
        A2C(observation_space=spaces.Box(0, 255, (84, 84, 4), np.uint8), action_space=spaces.Box(-1, 1, (2,)),
            use_sde=True)


def test_squash_output_needs_finite_bounds():
    with pytest.raises(ValueError, match="must be finite"):
        PPO(observation_space=spaces.Box(-1, 1, (3,)), action_space=spaces.Box(-np.inf, np.inf, (2,)), use_sde=True,
            squash_output=True)


@pytest.mark.parametrize("overrides,message", [
    ({"squash_output": True}, "squash_output needs use_sde=True"),
    ({"use_sde": True, "sde_sample_freq": -2}, "sde_sample_freq must be >= -1"),
    ({"use_sde": True, "sde_sample_freq": 2.5}, "sde_sample_freq must be an int"),
    ({"use_sde": 1}, "use_sde must be true or false"),
    ({"full_std": "yes"}, "full_std must be true or false"),
    ({"use_expln": None}, "use_expln of PPOConfig must not be None"),
])
def test_config_validation(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PPOConfig.build(None, **overrides)


def test_default_has_no_sde_state():
    agent = PPO("Pendulum-v1", n_envs=1, n_steps=8, batch_size=8)
    assert agent.sde is None and agent._exploration_matrices is None
    assert "exploration_matrices" not in agent._extra_state_arrays(False)
    with pytest.raises(RuntimeError, match="use_sde=True"):
        agent.reset_noise()


class BoxEnv(gym.Env):
    """A tiny continuous-control env (5 observations, 3 actions in [-1, 1]) for the update parity test."""

    observation_space = spaces.Box(-5.0, 5.0, (5,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.normal(size=5).astype(np.float32), {}

    def step(self, action):
        observation = self.np_random.normal(size=5).astype(np.float32)
        return observation, float(np.sum(action) - observation[0]), False, False, {}


@pytest.mark.parametrize("n_epochs", [1, 4])
def test_ppo_updates_with_gsde_equal_sb3s_from_the_same_weights_and_rollout(n_epochs):
    """RL-Zoo's PyBullet PPO (gSDE, ReLU, PyTorch init, gradient clipping) on one rollout that SB3
    collected, from SB3's weights: the clipped gradients of the first step, the logged loss terms
    and the weights after ``n_epochs`` Adam steps on the whole rollout (4: the ratio leaves 1 and
    the surrogate clips) are SB3's."""
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents_zoo.agents.ppo import ppo_loss

    torch.set_num_threads(1)
    n_envs, n_steps = 4, 16
    settings = dict(n_steps=n_steps, batch_size=n_envs * n_steps, n_epochs=n_epochs, learning_rate=3e-3, gamma=0.99,
                    gae_lambda=0.9, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, use_sde=True,
                    sde_sample_freq=4)
    reference = sb3.PPO("MlpPolicy", DummyVecEnv([BoxEnv] * n_envs), seed=0, device="cpu",
                        policy_kwargs=dict(log_std_init=-2.0, ortho_init=False, activation_fn=torch.nn.ReLU,
                                           net_arch=[32, 32]), **settings)
    reference.set_logger(configure(None, []))
    _, callback = reference._setup_learn(n_envs * n_steps)
    callback.on_training_start(locals(), globals())
    assert reference.collect_rollouts(reference.env, callback, reference.rollout_buffer, n_steps)
    agent = PPO(BoxEnv, n_envs=n_envs, seed=0, policy_hidden_sizes=[32, 32], activation="relu", log_std_init=-2.0,
                network_init="torch", **settings)
    load_sb3_weights(agent, reference.policy)
    buffer, theirs = agent.buffer, reference.rollout_buffer
    for name, array in (("observations", theirs.observations), ("actions", theirs.actions), ("values", theirs.values),
                        ("log_probs", theirs.log_probs), ("advantages", theirs.advantages), ("returns", theirs.returns)):
        getattr(buffer, name)[:] = array.reshape(getattr(buffer, name).shape)

    variables = agent.policy.trainable_variables
    with tf.GradientTape() as tape:
        loss = ppo_loss(agent.policy, *[tf.constant(x) for x in buffer.get()], tf.constant(0.2), None, 0.0, 0.5, True)
    gradients, _ = tf.clip_by_global_norm(tape.gradient(loss.total, variables), 0.5)
    ours = agent._train()
    reference.train()
    logged = reference.logger.name_to_value
    # Means over all minibatch steps; approx_kl over the last epoch's, as SB3 logs it.
    for name in ("policy_gradient_loss", "value_loss", "clip_fraction", "approx_kl"):
        np.testing.assert_allclose(ours[name], logged[f"train/{name}"], rtol=1e-3, atol=1e-6, err_msg=name)
    assert (logged["train/clip_fraction"] > 0) == (n_epochs > 1)
    for index, (mine, other) in enumerate(zip(agent.policy.split(agent.policy.params.numpy()),
                                              sb3_pieces_for_ours(reference.policy))):
        np.testing.assert_allclose(mine, other, rtol=1e-4, atol=1e-6, err_msg=f"weight piece {index} after the steps")
    if n_epochs == 1:  # SB3's step left its clipped gradients in .grad
        flat = tf.concat([tf.reshape(gradient, [-1]) for gradient in gradients], 0)
        for index, (mine, other) in enumerate(zip(agent.policy.split(flat), sb3_gradient_pieces(reference.policy))):
            np.testing.assert_allclose(np.asarray(mine), other, rtol=1e-4, atol=1e-7, err_msg=f"gradient piece {index}")


def _pendulum_with_time_feature():
    from wrappers.time_feature import TimeFeatureWrapper

    return TimeFeatureWrapper(gym.make("Pendulum-v1"))


def test_ppo_training_loop_with_gsde_and_normalization_follows_sb3s_rollout_after_rollout(monkeypatch):
    """The whole loop, not one update: RL-Zoo's PyBullet PPO recipe (gSDE resampled every 4 steps,
    VecNormalize-style observations and rewards, the time feature, time-limit truncations, a
    linear clip schedule) on Pendulum for 6 rollouts, from SB3's initial weights. The two
    libraries' random draws are the only things made common: each gSDE exploration matrix
    is drawn from a generator keyed by the step it is drawn at, and each epoch's minibatch
    order comes from one shared sequence (mapped from SB3's env-major flattening to our
    time-major one). Everything else (acting, bootstrapping at truncations, the running
    statistics, GAE, the schedule, the 4 epochs of Adam steps) runs as each library runs it,
    and the weights after every update are SB3's to float32 round-off."""
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.callbacks import BaseCallback as SB3Callback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from agents_zoo.core import callbacks

    torch.set_num_threads(1)
    n_envs, n_steps, n_rollouts, sde_sample_freq = 4, 64, 6, 4
    settings = dict(n_steps=n_steps, batch_size=64, n_epochs=4, learning_rate=3e-4, gamma=0.99, gae_lambda=0.9,
                    ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, use_sde=True, sde_sample_freq=sde_sample_freq)

    def exploration_matrices(num_timesteps: int, log_std: np.ndarray, n: int) -> np.ndarray:
        std = np.exp(np.asarray(log_std, np.float64))
        draw = np.random.default_rng(num_timesteps // (n_envs * sde_sample_freq)).standard_normal((n, *std.shape))
        return (std * draw).astype(np.float32)

    def shared_permutations():
        count = 0
        while True:
            yield np.random.default_rng(10_000 + count).permutation(n_envs * n_steps)
            count += 1

    reference = sb3.PPO("MlpPolicy", VecNormalize(make_vec_env(_pendulum_with_time_feature, n_envs=n_envs, seed=0,
                                                               vec_env_cls=DummyVecEnv), gamma=0.99),
                        seed=0, device="cpu", clip_range=lambda progress_remaining: 0.4 * progress_remaining,
                        policy_kwargs=dict(log_std_init=-2.0, ortho_init=False, activation_fn=torch.nn.ReLU,
                                           net_arch=[64, 64]), **settings)
    reference.set_logger(configure(None, []))
    noise = reference.policy.action_dist

    def sb3_sample_weights(log_std, batch_size=1):
        if batch_size == n_envs:  # SB3's train() also resamples for its minibatches; no action uses those
            matrices = torch.as_tensor(exploration_matrices(reference.num_timesteps, log_std.detach().numpy(), n_envs))
            noise.exploration_matrices, noise.exploration_mat = matrices, matrices[0]

    noise.sample_weights = sb3_sample_weights
    agent = PPO(_pendulum_with_time_feature, n_envs=n_envs, seed=0, policy_hidden_sizes=[64, 64], activation="relu",
                log_std_init=-2.0, network_init="torch", clip_range=0.4, clip_range_schedule="linear",
                normalize_observation=True, normalize_reward=True, **settings)
    load_sb3_weights(agent, reference.policy)
    agent.sde.np_sample_matrices = lambda log_std, n, rng: exploration_matrices(agent.num_timesteps, log_std, n)

    class SharedPermutations:
        """Our agent's generator, but with the shared minibatch orders."""

        def __init__(self, rng: np.random.Generator):
            self.rng, self.orders = rng, shared_permutations()

        def __getattr__(self, name):
            return getattr(self.rng, name)

        def permutation(self, size):
            order = next(self.orders)  # over SB3's flat index env * n_steps + step
            return (order % n_steps) * n_envs + order // n_steps

    agent.rng = SharedPermutations(agent.rng)

    def sb3_weights() -> np.ndarray:
        return np.concatenate([piece.reshape(-1) for piece in sb3_pieces_for_ours(reference.policy)])

    theirs, ours = [], []

    class RecordSB3(SB3Callback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            theirs.append(sb3_weights())

    class RecordOurs(callbacks.BaseCallback):
        def on_step(self) -> bool:
            return True

        def on_rollout_start(self) -> None:
            ours.append(agent.policy.params.numpy().copy())

    sb3_orders = shared_permutations()
    monkeypatch.setattr(np.random, "permutation", lambda size: next(sb3_orders))  # SB3's RolloutBuffer.get
    reference.learn(n_envs * n_steps * n_rollouts, callback=RecordSB3())
    monkeypatch.undo()
    agent.learn(n_envs * n_steps * n_rollouts, callback=RecordOurs())

    # Rollout k starts from the weights of update k - 1 (the last update, at clip range 0, is left
    # out: there a ratio 1 +- 1e-7 from float32 round-off decides which branch of the min carries
    # the gradient).
    assert len(ours) == len(theirs) == n_rollouts
    for update, (mine, other) in enumerate(zip(ours[1:], theirs[1:]), start=1):
        assert np.abs(other - theirs[0]).max() > 1e-3 * update  # the updates moved the weights
        np.testing.assert_allclose(mine, other, rtol=0, atol=1e-6, err_msg=f"weights after update {update}")
    np.testing.assert_allclose(agent.observation_rms.mean, reference.env.obs_rms.mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(agent.return_rms.var, reference.env.ret_rms.var, rtol=1e-6)
