"""The shared core: config validation, spaces, buffers, distributions, networks, seeding, facade."""

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from agents_zoo.agents.random_agent import RandomAgent, RandomConfig
from agents_zoo.core import distributions as dist
from agents_zoo.core.buffers import ReplayBuffer, RolloutBuffer, compute_gae
from agents_zoo.core.config import AgentConfig, check_positive, field
from agents_zoo.core.envs import UnknownEnvError, make_vec_env
from agents_zoo.core.networks import MLP, NUMPY_OPS, NatureCNN, activated_layers, build
from agents_zoo.core.normalization import RunningMeanStd
from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.spaces import UnsupportedSpaceError, space_from_json, space_to_json


# ----------------------------------------------------------------------------- config
@dataclasses.dataclass
class ToyConfig(AgentConfig):
    learning_rate: float = field(3e-4, doc="step size")
    batch_size: int = field(64, doc="minibatch size")

    def validate(self):
        super().validate()
        check_positive(self, "learning_rate")


def test_config_defaults_roundtrip_and_overrides():
    cfg = ToyConfig.build({"learning_rate": 1e-3}, batch_size=32)
    assert cfg.learning_rate == 1e-3 and cfg.batch_size == 32
    assert ToyConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["policy_hidden_sizes"] == [64, 64]


@pytest.mark.parametrize("values, message", [
    ({"learning_rate": -1.0}, "learning_rate must be in (0, inf), got -1.0"),
    ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ({"batch_size": 1.5}, "batch_size must be an int, got 1.5"),
    ({"n_envs": 0}, "n_envs must be >= 1, got 0"),
    ({"activation": "sigmoidal"}, "activation must be one of"),
    ({"policy_hidden_sizes": [64, -1]}, "policy_hidden_sizes must be a tuple of positive ints"),
    ({"learning_rte": 1.0}, "unknown setting 'learning_rte' for ToyConfig; did you mean 'learning_rate'?"),
])
def test_config_errors_name_field_and_value(values, message):
    with pytest.raises(ValueError) as info:
        ToyConfig.from_dict(values)
    assert message in str(info.value)


def test_cli_values_are_parsed_to_field_types():
    assert ToyConfig.parse_cli_value("learning_rate", "1") == 1.0
    assert ToyConfig.parse_cli_value("policy_hidden_sizes", "[32,32]") == [32, 32]
    assert ToyConfig.parse_cli_value("activation", "relu") == "relu"
    cfg = ToyConfig.build(policy_hidden_sizes=ToyConfig.parse_cli_value("policy_hidden_sizes", "16"))
    assert cfg.policy_hidden_sizes == (16,)


# ----------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("space", [
    spaces.Discrete(3), spaces.Discrete(4, start=-1),
    spaces.Box(-1.0, 1.0, (3,), np.float32), spaces.Box(0, 255, (4, 84, 84), np.uint8),
    spaces.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 2.0]), dtype=np.float64),
])
def test_space_json_roundtrip(space):
    assert space_from_json(space_to_json(space)) == space


def test_unsupported_spaces_are_named():
    env = gym.make("CartPole-v1")
    env.observation_space = spaces.Dict({"a": spaces.Discrete(2)})
    with pytest.raises(UnsupportedSpaceError, match=r"random does not support the observation space Dict"):
        RandomAgent(observation_space=spaces.Dict({"a": spaces.Discrete(2)}), action_space=spaces.Discrete(2))
    with pytest.raises(UnsupportedSpaceError, match=r"action space MultiDiscrete"):
        RandomAgent(observation_space=spaces.Box(-1, 1, (2,)), action_space=spaces.MultiDiscrete([2, 2]))


def test_env_id_typo_suggests_closest():
    with pytest.raises(UnknownEnvError, match=r"unknown environment id 'CartPol-v1'; did you mean 'CartPole-v1'"):
        make_vec_env("CartPol-v1")


def test_single_env_instance_cannot_be_copied():
    with pytest.raises(ValueError, match="n_envs=4"):
        make_vec_env(gym.make("CartPole-v1"), n_envs=4)


@pytest.mark.parametrize("algo, env_id, settings", [
    ("ppo", "CartPole-v1", {"n_steps": 32, "batch_size": 32}),
    ("a2c", "CartPole-v1", {}),
    ("dqn", "CartPole-v1", {"learning_starts": 10}),
    ("qlearning", "FrozenLake-v1", {}),
])
def test_set_env_trains_a_loaded_model_on_another_env_with_the_same_spaces(algo, env_id, settings, tmp_path):
    import agents_zoo

    agents_zoo.make(algo, env_id, seed=0, **settings).learn(64).save(tmp_path / "model.zip")
    model = agents_zoo.load(tmp_path / "model.zip")  # no env: predicts only
    vec = make_vec_env(env_id, 1)
    model.set_env(vec)
    assert model.get_env() is vec and model.env_id == env_id
    model.learn(64, reset_num_timesteps=False)  # starts new episodes on the new env
    assert model.num_timesteps >= 128
    other = "Blackjack-v1" if algo == "qlearning" else "Acrobot-v1"  # ids of gymnasium 0.29 and 1.x alike
    with pytest.raises(ValueError, match=f"but env '{other}' has .*; train it on an env with the same spaces"):
        model.set_env(other)
    with pytest.raises(ValueError, match=f"the env has 2 envs but {algo} was built for n_envs=1"):
        model.set_env(make_vec_env(env_id, 2))
    assert model.get_env() is vec


def test_predict_has_sb3s_signature_so_sb3s_evaluate_policy_takes_our_agents():
    evaluation = pytest.importorskip("stable_baselines3.common.evaluation")
    import agents_zoo

    agent = agents_zoo.make("ppo", "CartPole-v1", seed=0)
    observation = np.zeros(4, np.float32)
    assert agent.predict(observation, None, None, True)[1] is None
    mean, std = evaluation.evaluate_policy(agent, gym.make("CartPole-v1"), n_eval_episodes=2, warn=False)
    assert 0 < mean <= 500 and std >= 0
    with pytest.raises(TypeError, match="predict's second argument is the recurrent state, as in SB3, and ppo has "
                                        "none: it must be None, got True; pass deterministic=True by name"):
        agent.predict(observation, True)


# ----------------------------------------------------------------------------- buffers
def test_gae_hand_computed_with_termination_and_truncation():
    # One env, three steps: step 0 continues, step 1 is truncated (bootstrap from final obs
    # value 10), step 2 terminates (no bootstrap).
    rewards = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    values = np.array([[0.5], [0.6], [0.7]], dtype=np.float32)
    terminated = np.array([[False], [False], [True]])
    truncated = np.array([[False], [True], [False]])
    trunc_values = np.array([[0.0], [10.0], [0.0]], dtype=np.float32)
    gamma, lam = 0.9, 0.8
    adv, ret = compute_gae(rewards, values, terminated, truncated, np.array([99.0], dtype=np.float32),
                           trunc_values, gamma, lam)
    d2 = 3.0 - 0.7                      # terminated: no successor value
    d1 = 2.0 + gamma * 10.0 - 0.6       # truncated: value of the final observation
    d0 = 1.0 + gamma * 0.6 - 0.5
    expected = np.array([d0 + gamma * lam * d1, d1, d2])  # the chain stops at the truncation
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], expected + values[:, 0], rtol=1e-6)


def test_rollout_buffer_shapes_and_dtypes():
    obs_space, act_space = spaces.Box(-1, 1, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32)
    buffer = RolloutBuffer(4, 2, obs_space, act_space, 0.99, 0.95)
    for _ in range(4):
        buffer.add(np.zeros((2, 3)), np.zeros((2, 2)), np.ones(2), np.zeros(2), np.zeros(2),
                   np.array([False, True]), np.array([False, False]))
    with pytest.raises(RuntimeError, match="full"):
        buffer.add(np.zeros((2, 3)), np.zeros((2, 2)), np.ones(2), np.zeros(2), np.zeros(2),
                   np.zeros(2, bool), np.zeros(2, bool))
    buffer.compute_returns_and_advantage(np.zeros(2))
    batch = buffer.get()
    assert batch.observations.shape == (8, 3) and batch.observations.dtype == np.float32
    assert batch.actions.shape == (8, 2) and batch.advantages.shape == (8,)
    # env 1 terminates every step: its advantage is just the reward
    np.testing.assert_allclose(batch.advantages[1::2], 1.0)


def test_image_rollout_buffer_keeps_uint8():
    buffer = RolloutBuffer(2, 1, spaces.Box(0, 255, (4, 8, 8), np.uint8), spaces.Discrete(3), 0.99, 0.95)
    assert buffer.observations.dtype == np.uint8 and buffer.actions.dtype == np.int64


@settings(max_examples=25, deadline=None)
@given(capacity=st.integers(1, 20), n_envs=st.integers(1, 4), adds=st.integers(0, 30), seed=st.integers(0, 1000))
def test_replay_buffer_is_circular_and_samples_stored_transitions(capacity, n_envs, adds, seed):
    buffer = ReplayBuffer(capacity, spaces.Box(-1e6, 1e6, (2,), np.float32), spaces.Discrete(3), n_envs=n_envs)
    step = 0
    for _ in range(adds):
        obs = np.array([[step + i, 0] for i in range(n_envs)], dtype=np.float32)
        buffer.add(obs, np.zeros(n_envs, dtype=np.int64), obs[:, 0], obs + 1, np.zeros(n_envs))
        step += n_envs
    assert len(buffer) == min(adds * n_envs, capacity)
    if len(buffer):
        batch = buffer.sample(np.random.default_rng(seed), 5, n_batches=2)
        assert batch.observations.shape == (2, 5, 2) and batch.observations.dtype == np.float32
        # every sampled transition is one that was added, and among the newest `capacity`
        np.testing.assert_array_equal(batch.next_observations, batch.observations + 1)
        assert batch.observations[..., 0].min() >= max(0, step - capacity)
        np.testing.assert_array_equal(batch.rewards, batch.observations[..., 0])


def test_replay_buffer_rejects_bad_capacity():
    with pytest.raises(ValueError, match="capacity must be a positive int, got 0"):
        ReplayBuffer(0, spaces.Box(-1, 1, (2,)), spaces.Discrete(2))


# ----------------------------------------------------------------------------- distributions
def test_categorical_log_prob_and_entropy_closed_form():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]], dtype=np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    actions = np.array([1, 2])
    np.testing.assert_allclose(dist.categorical_log_prob(logits, actions).numpy(), np.log(probs[[0, 1], actions]), rtol=1e-5)
    np.testing.assert_allclose(dist.categorical_entropy(logits).numpy(), -(probs * np.log(probs)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(dist.categorical_entropy(logits[1:]).numpy(), [math.log(3)], rtol=1e-6)
    sampled, log_probs = dist.np_categorical_sample(logits, np.random.default_rng(0), deterministic=True)
    np.testing.assert_array_equal(sampled, [1, 0])
    np.testing.assert_allclose(log_probs, np.log(probs[[0, 1], [1, 0]]), rtol=1e-5)


def test_numpy_categorical_sampling_matches_probabilities():
    logits = np.log(np.array([[0.2, 0.5, 0.3]], dtype=np.float64)).repeat(20000, axis=0)
    actions, _ = dist.np_categorical_sample(logits, np.random.default_rng(1), deterministic=False)
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / len(actions), [0.2, 0.5, 0.3], atol=0.015)


def test_gaussian_log_prob_and_entropy_closed_form():
    mean = np.array([[0.0, 1.0]], dtype=np.float32)
    log_std = np.array([0.0, math.log(2.0)], dtype=np.float32)
    action = np.array([[1.0, 3.0]], dtype=np.float32)
    expected = sum(-0.5 * ((a - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
                   for a, m, s in [(1.0, 0.0, 1.0), (3.0, 1.0, 2.0)])
    np.testing.assert_allclose(dist.gaussian_log_prob(mean, log_std, action).numpy(), [expected], rtol=1e-5)
    expected_entropy = sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in (1.0, 2.0))
    np.testing.assert_allclose(dist.gaussian_entropy(log_std).numpy(), expected_entropy, rtol=1e-5)
    _, np_log_prob = dist.np_gaussian_sample(action, log_std, np.random.default_rng(0), deterministic=True)
    np.testing.assert_allclose(np_log_prob, [-math.log(2.0) - math.log(2 * math.pi)], rtol=1e-5)


# ----------------------------------------------------------------------------- networks
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_numpy_mlp_matches_keras(activation):
    model = MLP((16, 8), activation, 3)
    build(model, spaces.Box(-1, 1, (5,), np.float32))
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    hidden = activated_layers(NUMPY_OPS, [(w.numpy(), b.numpy()) for w, b in model.hidden_weights()], x, activation)
    numpy_output = NUMPY_OPS.affine(hidden, model.head.kernel.numpy(), model.head.bias.numpy())
    np.testing.assert_allclose(numpy_output, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_nature_cnn_accepts_channel_first_uint8():
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    cnn = NatureCNN(space)
    out = cnn(tf.constant(np.zeros((2, 4, 84, 84), np.uint8)))
    assert out.shape == (2, 512)


def test_running_mean_std_matches_numpy():
    rms = RunningMeanStd((2,))
    data = np.random.default_rng(0).normal(3.0, 2.0, (1000, 2))
    for chunk in np.split(data, 10):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-3)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-3)


# ----------------------------------------------------------------------------- facade
def test_random_agent_facade_and_same_seed_determinism(tmp_path):
    def run(seed):
        agent = RandomAgent("CartPole-v1", seed=seed, n_envs=2)
        agent.learn(500)
        return agent, agent.evaluate(3).returns

    a, returns_a = run(3)
    _, returns_b = run(3)
    np.testing.assert_array_equal(returns_a, returns_b)
    assert a.num_timesteps == 500
    obs = np.zeros(4, np.float32)
    action, state = a.predict(obs)
    assert state is None and a.action_space.contains(int(action))
    with pytest.raises(ValueError, match=r"observation of shape \(3,\) does not match"):
        a.predict(np.zeros(3))


def test_save_load_roundtrip_restores_rng_and_counters(tmp_path):
    agent = RandomAgent("Pendulum-v1", seed=1)
    agent.learn(300)
    path = agent.save(tmp_path / "random.zip")
    loaded = RandomAgent.load(path)
    assert loaded.num_timesteps == 300 and loaded.env_id == "Pendulum-v1" and loaded.env is None
    obs = np.zeros((5, 3), np.float32)
    np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])  # same RNG state
    assert loaded.config == agent.config


def test_learn_rejects_bad_budget():
    agent = RandomAgent("CartPole-v1")
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="total_timesteps must be a positive int"):
            agent.learn(bad)


def test_nonfinite_guard_names_the_step():
    class NaNReward(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, float("nan"), terminated, truncated, info

    agent = RandomAgent(lambda: NaNReward(gym.make("CartPole-v1")), detect_nonfinite=True)
    with pytest.raises(FloatingPointError, match="non-finite reward at step 1"):
        agent.learn(10)


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(1, 2) == derive_seed(1, 2) != derive_seed(1, 3)
    assert derive_seed(None, 2) is None
