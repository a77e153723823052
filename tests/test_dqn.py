"""DQN: exact TD targets and update bookkeeping, acting paths, save/load, determinism, bad input, smoke runs."""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.agents.dqn import DQN, DQNConfig, huber, linear_epsilon, td_targets
from agents_zoo.agents.replay import FrameReplayBuffer
from agents_zoo.core.spaces import UnsupportedSpaceError

TINY = dict(buffer_size=500, learning_starts=100, batch_size=16, train_freq=4, gradient_steps=2,
            target_update_interval=20, policy_hidden_sizes=(16,), exploration_fraction=0.5)


# ---------------------------------------------------------------------- exact math
def test_td_targets_by_hand_for_dqn_and_double_dqn():
    rewards = np.array([1.0, 0.5, -1.0], np.float32)
    terminations = np.array([0.0, 1.0, 0.0], np.float32)  # row 2 was truncated: it still bootstraps
    next_q_target = np.array([[1.0, 3.0], [5.0, 7.0], [2.0, -4.0]], np.float32)
    next_q_online = np.array([[9.0, 0.0], [0.0, 1.0], [-1.0, 4.0]], np.float32)
    gamma = 0.9
    vanilla = td_targets(rewards, terminations, next_q_target, next_q_online, gamma, double_q=False).numpy()
    # max_a Q_target: 3, (terminated), 2
    np.testing.assert_allclose(vanilla, [1.0 + 0.9 * 3.0, 0.5, -1.0 + 0.9 * 2.0], rtol=1e-6)
    double = td_targets(rewards, terminations, next_q_target, next_q_online, gamma, double_q=True).numpy()
    # argmax Q_online picks 0 and 1: Q_target[0, 0] = 1, Q_target[2, 1] = -4
    np.testing.assert_allclose(double, [1.0 + 0.9 * 1.0, 0.5, -1.0 + 0.9 * -4.0], rtol=1e-6)


def test_huber_is_torch_smooth_l1():
    errors = tf.constant([0.5, -2.0, 1.0, 0.0])
    assert float(huber(errors)) == pytest.approx((0.125 + 1.5 + 0.5 + 0.0) / 4)


def test_linear_epsilon_matches_sb3_get_linear_fn():
    assert linear_epsilon(1.0, 1.0, 0.05, 0.1) == 1.0
    assert linear_epsilon(0.95, 1.0, 0.05, 0.1) == pytest.approx(0.525)
    assert linear_epsilon(0.5, 1.0, 0.05, 0.1) == 0.05


def test_one_compiled_phase_equals_the_same_updates_one_call_each():
    """Batching all gradient steps of a phase into one tf.function changes nothing numerically."""
    agent = DQN("CartPole-v1", seed=3, **TINY)
    state = [*agent.q_net.variables, *agent.q_net_target.variables, *agent.optimizer.variables]
    initial = [v.numpy() for v in state]
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(3, 16, 4)).astype(np.float32)
    next_obs = rng.normal(size=(3, 16, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=(3, 16))
    rewards = rng.normal(size=(3, 16)).astype(np.float32)
    terminations = (rng.random((3, 16)) < 0.2).astype(np.float32)
    discounts = np.full((3, 16), agent.config.gamma, np.float32)
    agent._train_phase(tf.constant(0.0), None, obs, actions, rewards, next_obs, terminations, discounts)
    batched = [v.numpy() for v in agent.q_net.variables]
    for variable, value in zip(state, initial):
        variable.assign(value)
    for i in range(3):
        agent._train_phase(tf.constant(0.0), None, obs[i:i + 1], actions[i:i + 1], rewards[i:i + 1], next_obs[i:i + 1],
                           terminations[i:i + 1], discounts[i:i + 1])
    for a, b in zip(batched, agent.q_net.variables):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(batched[0], initial[0])  # the updates did change the weights


def test_target_updates_are_counted_per_vector_step_as_in_sb3():
    # SB3: update when _n_calls % max(target_update_interval // n_envs, 1) == 0; 2 envs, interval 10 -> every 5 calls.
    agent = DQN("CartPole-v1", seed=0, n_envs=2, **{**TINY, "target_update_interval": 10, "learning_starts": 10_000})
    agent.learn(40)  # 20 vector steps, no training: updates stay pending
    assert agent._n_calls == 20
    assert agent._pending_target_updates == 0  # applied when learn() returned
    agent._pending_target_updates = 3
    agent.config = agent.config.replace(tau=0.5)
    assert agent._target_mix() == pytest.approx(1 - 0.5 ** 3)  # three Polyak steps compounded


def test_polyak_mix_and_hard_copy():
    agent = DQN("CartPole-v1", seed=0, **TINY)
    online = [v.numpy() for v in agent.q_net.variables]
    for v in agent.q_net_target.variables:
        v.assign(tf.zeros_like(v))
    agent._mix_target(tf.constant(0.25))
    for t, o in zip(agent.q_net_target.variables, online):
        np.testing.assert_allclose(t.numpy(), 0.25 * o, rtol=1e-6)
    agent._mix_target(tf.constant(1.0))
    for t, o in zip(agent.q_net_target.variables, online):
        np.testing.assert_array_equal(t.numpy(), o)


@pytest.mark.parametrize("dueling", [False, True])
def test_numpy_acting_matches_the_network(dueling):
    agent = DQN("CartPole-v1", seed=1, dueling=dueling, **TINY)
    obs = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    q_tf = agent.q_net(obs).numpy()
    q_np = agent._numpy_q_net(obs)
    np.testing.assert_allclose(q_np, q_tf, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], q_tf.argmax(axis=1))
    if dueling:  # the mean advantage is subtracted (Wang et al. 2016, eq. 9)
        hidden = agent.q_net.trunk(agent.q_net.features(obs))
        np.testing.assert_allclose(q_tf.mean(axis=1, keepdims=True), agent.q_net.value(hidden).numpy(), atol=1e-5)


def test_random_acting_needs_no_network_call():
    agent = DQN("CartPole-v1", seed=0, **TINY)

    def fail(_observations):
        raise AssertionError("the network was called for an all-random step")

    agent._greedy = fail
    actions = agent._epsilon_greedy(np.zeros((5, 4), np.float32), epsilon=1.0)
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1}


# ---------------------------------------------------------------------- smoke runs
@pytest.mark.parametrize("double_q,dueling", [(True, False), (False, True)])
def test_cartpole_smoke_with_several_envs(double_q, dueling):
    agent = DQN("CartPole-v1", seed=0, n_envs=2, double_q=double_q, dueling=dueling, **TINY)
    agent.learn(400)
    assert agent.num_timesteps == 400 and agent._n_updates > 0
    assert len(agent.replay) == 400
    assert agent.exploration_rate == pytest.approx(TINY["exploration_fraction"] and 0.05)


def test_pong_through_our_wrappers_trains():
    agent = DQN("agents_zoo/Pong-dqn-v0", seed=0, learning_starts=100, buffer_size=1000, batch_size=8,
                n_envs=2, target_update_interval=50)
    assert isinstance(agent.replay, FrameReplayBuffer) and agent.replay.padding is None
    agent.learn(300)
    # As SB3: rollouts of 4 vector steps (8 env steps) run to the end, so 304 steps; a phase of one
    # update follows each rollout that ends past learning_starts (at 104, 112, ..., 304).
    assert agent.num_timesteps == 304
    assert agent._n_updates == len(range(104, 305, 8))
    assert agent.replay.padding == "reset"  # our DQN preset repeats the first frame at reset
    assert agent.replay.bytes_per_transition < 8 * 1024
    batch = agent.replay.sample(agent.rng, 4)
    assert batch.observations.shape == (4, 4, 84, 84) and batch.observations.dtype == np.uint8
    assert agent.predict(batch.observations[0], deterministic=True)[0] in range(6)


# ---------------------------------------------------------------------- save / load / determinism
def test_save_load_round_trip_with_replay_buffer(tmp_path):
    agent = DQN("CartPole-v1", seed=0, **TINY).learn(300)
    obs = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    agent.save(tmp_path / "with.zip", include_replay_buffer=True)
    agent.save(tmp_path / "without.zip")
    loaded = DQN.load(tmp_path / "with.zip", env="CartPole-v1")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    for a, b in zip(agent.q_net_target.variables, loaded.q_net_target.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(loaded.replay) == len(agent.replay) == 300
    np.testing.assert_array_equal(loaded.replay.observations[:300], agent.replay.observations[:300])
    assert (loaded._n_calls, loaded.exploration_rate) == (agent._n_calls, agent.exploration_rate)
    assert len(DQN.load(tmp_path / "without.zip", env="CartPole-v1").replay) == 0
    predictor = DQN.load(tmp_path / "without.zip")  # no env: acts, no buffer
    assert predictor.replay is None
    np.testing.assert_array_equal(predictor.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    loaded.learn(100, reset_num_timesteps=False)  # resumes
    assert loaded.num_timesteps == 400


def test_a_loaded_model_trains_without_autograph_warnings(tmp_path):
    # AutoGraph could not transform a method whose body was only a docstring and said so,
    # asking the user to report it to the TensorFlow team, on every load-and-learn.
    records = []
    catcher = logging.Handler()
    catcher.emit = records.append
    tf.get_logger().addHandler(catcher)
    try:
        DQN("CartPole-v1", seed=0, **TINY).learn(100).save(tmp_path / "model.zip")
        DQN.load(tmp_path / "model.zip", env="CartPole-v1").learn(100)
    finally:
        tf.get_logger().removeHandler(catcher)
    assert [record.getMessage() for record in records if "AutoGraph" in record.getMessage()] == []


def test_files_saved_with_the_old_fused_adam_layout_still_load(tmp_path):
    """DQN's optimizer arrays were [iterations, learning_rate, m..., v...] before it shared
    TorchStyleOptimizer ([m..., iterations, v...]); such files load with the same optimizer state."""
    from agents_zoo.core.serialization import load_archive, save_archive

    agent = DQN("CartPole-v1", seed=0, **TINY).learn(300)
    archive = load_archive(agent.save(tmp_path / "new.zip"))
    optimizer = [archive.arrays.pop(key) for key in sorted(k for k in archive.arrays if k.startswith("optimizer/"))]
    n = len(agent.q_net.trainable_variables)
    first, iterations, second = optimizer[:n], optimizer[n], optimizer[n + 1:]
    learning_rate = np.array(agent.config.learning_rate, np.float32)
    for index, value in enumerate([iterations, learning_rate, *first, *second]):
        archive.arrays[f"optimizer/{index:03d}"] = value
    old = save_archive(tmp_path / "old.zip", kind=archive.kind, config=archive.config, arrays=archive.arrays,
                       metadata=archive.metadata)
    loaded = DQN.load(old, env="CartPole-v1")
    for mine, theirs in zip(agent.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    for mine, theirs in zip(agent.q_net.variables, loaded.q_net.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_save_load_frame_buffer(tmp_path):
    agent = DQN("agents_zoo/Pong-dqn-v0", seed=0, learning_starts=1000, buffer_size=200, batch_size=4)
    agent.learn(60)
    agent.save(tmp_path / "pong.zip", include_replay_buffer=True)
    loaded = DQN.load(tmp_path / "pong.zip", env="agents_zoo/Pong-dqn-v0")
    for a, b in zip(agent.replay.sample(np.random.default_rng(0), 8), loaded.replay.sample(np.random.default_rng(0), 8)):
        np.testing.assert_array_equal(a, b)


def test_same_seed_gives_identical_weights_and_returns():
    def run():
        agent = DQN("CartPole-v1", seed=7, **TINY).learn(300)
        return [v.numpy() for v in agent.q_net.variables], list(agent._episode_returns)

    (weights_a, returns_a), (weights_b, returns_b) = run(), run()
    assert returns_a == returns_b
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- bad input
def test_continuous_actions_are_refused_with_the_agents_that_support_them():
    with pytest.raises(UnsupportedSpaceError, match=r"dqn does not support the action space Box.*a2c, gail, ppo"):
        DQN("Pendulum-v1")


@pytest.mark.parametrize("settings,message", [
    ({"buffer_size": 10, "batch_size": 32}, "batch_size=32 is larger than buffer_size=10"),
    ({"gamma": 1.5}, r"gamma must be in \[0.0, 1.0\], got 1.5"),
    ({"tau": 0.0}, r"tau must be in \(0.0, 1.0\], got 0.0"),
    ({"train_freq": 0}, "train_freq must be >= 1, got 0"),
    ({"gradient_steps": -2}, "gradient_steps must be >= -1, got -2"),
    ({"exploration_final_eps": -0.1}, "exploration_final_eps must be in"),
    ({"learning_rate": 0}, "learning_rate must be in"),
    ({"cnn_hidden_sizes": (0,)}, r"cnn_hidden_sizes must be a tuple of positive ints, got \(0,\)"),
    ({"double_q": "yes"}, "double_q must be true or false, got 'yes'"),
])
def test_bad_settings_name_the_field_and_value(settings, message):
    with pytest.raises(ValueError, match=message):
        DQNConfig(**settings)


def test_frame_channels_must_divide_the_stack():
    with pytest.raises(ValueError, match="frame_channels=3 does not divide the 4 channels"):
        DQN("agents_zoo/Pong-dqn-v0", frame_channels=3, buffer_size=100, batch_size=4)


# ---------------------------------------------------------------------- parity with SB3
class _SixFeaturesThreeActions(gym.Env):
    """A 6-dimensional, 3-action env for the parity test (only its spaces are used)."""

    observation_space = spaces.Box(-5.0, 5.0, (6,), np.float32)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(6, np.float32), {}

    def step(self, action):
        return np.zeros(6, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("max_grad_norm", [10.0, 0.05])
def test_dqn_gradient_steps_equal_sb3s_from_the_same_weights_and_batches(max_grad_norm, monkeypatch):
    """SB3's DQN.train (vanilla targets from the target network, Huber loss, Adam, global-norm
    clipping; 0.05 makes the clip bind) and our compiled training phase, from the same weights on
    the same 4 batches with terminations: the loss and the weights after the 4 steps are SB3's,
    and the target network is untouched until a target update."""
    torch = pytest.importorskip("torch")
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.type_aliases import ReplayBufferSamples
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    settings = dict(learning_rate=1e-3, batch_size=16, gamma=0.9, max_grad_norm=max_grad_norm)
    reference = sb3.DQN("MlpPolicy", DummyVecEnv([_SixFeaturesThreeActions]), seed=0, device="cpu",
                        policy_kwargs=dict(net_arch=[32, 32]), **settings)
    reference.set_logger(configure(None, []))
    agent = DQN(_SixFeaturesThreeActions, seed=1, policy_hidden_sizes=(32, 32), **settings)
    # Our DQN adds Adam's epsilon to sqrt(v) as Keras does (core/optimizers.py); with torch's
    # placement the two updates are the same arithmetic, which is what is compared here.
    agent.optimizer.torch_epsilon = True

    def sb3_pieces(network) -> list[np.ndarray]:
        layers = [layer for layer in network.q_net if hasattr(layer, "weight")]
        return [piece for layer in layers for piece in (layer.weight.detach().numpy().T, layer.bias.detach().numpy())]

    for ours, theirs in ((agent.q_net, reference.q_net), (agent.q_net_target, reference.q_net_target)):
        for variable, piece in zip(ours.weight_pieces(), sb3_pieces(theirs), strict=True):
            variable.assign(piece)
    agent._refresh_numpy_q_net(agent.q_net.acting_weights())
    target_before = [piece.copy() for piece in sb3_pieces(reference.q_net_target)]

    rng = np.random.default_rng(0)
    n_steps, batch = 4, settings["batch_size"]
    observations = rng.normal(size=(n_steps, batch, 6)).astype(np.float32)
    next_observations = rng.normal(size=(n_steps, batch, 6)).astype(np.float32)
    actions = rng.integers(0, 3, size=(n_steps, batch)).astype(np.int64)
    rewards = rng.normal(size=(n_steps, batch)).astype(np.float32)
    terminations = (rng.random((n_steps, batch)) < 0.3).astype(np.float32)
    samples = iter(ReplayBufferSamples(torch.as_tensor(observations[i]), torch.as_tensor(actions[i][:, None]),
                                       torch.as_tensor(next_observations[i]), torch.as_tensor(terminations[i][:, None]),
                                       torch.as_tensor(rewards[i][:, None])) for i in range(n_steps))
    monkeypatch.setattr(reference.replay_buffer, "sample", lambda *args, **kwargs: next(samples))
    reference.train(gradient_steps=n_steps, batch_size=batch)

    discounts = np.full((n_steps, batch), settings["gamma"], np.float32)
    loss, _, _, _ = agent._train_phase(tf.constant(0.0), None, *(tf.constant(a) for a in (
        observations, actions.astype(np.int32), rewards, next_observations, terminations, discounts)))
    assert float(loss) == pytest.approx(reference.logger.name_to_value["train/loss"], rel=1e-5)
    for index, (mine, other) in enumerate(zip(agent.q_net.weight_pieces(), sb3_pieces(reference.q_net), strict=True)):
        np.testing.assert_allclose(mine.numpy(), other, rtol=1e-5, atol=1e-6, err_msg=f"online piece {index}")
    for index, (mine, other) in enumerate(zip(agent.q_net_target.weight_pieces(), target_before, strict=True)):
        np.testing.assert_array_equal(mine.numpy(), other, err_msg=f"target piece {index}")


def test_greedy_actions_picked_in_the_training_call_are_the_ones_acting_would_pick():
    """An image Q-network's training call also returns the greedy actions for the observations the
    next step acts on (its weights still in cache): the run is the one where acting computes them itself."""
    from wrappers.fake_envs import RandomImageEnv

    def run(use_ahead: bool):
        agent = DQN(lambda: RandomImageEnv(shape=(4, 36, 36), episode_length=30), seed=0, buffer_size=300,
                    learning_starts=20, batch_size=8, train_freq=2, target_update_interval=10,
                    exploration_fraction=0.1, exploration_final_eps=0.0, compute_dtype="float32",
                    deduplicate_frames=False)
        calls = {"ahead": 0, "computed": 0}
        greedy_graph = agent._greedy_graph

        def counting_graph(observations):
            calls["computed"] += 1
            return greedy_graph(observations)

        agent._greedy_graph = counting_graph
        train = agent._train

        def train_and_maybe_forget(steps):
            train(steps)
            if not use_ahead:
                agent._greedy_ahead = None
            elif agent._greedy_ahead is not None:
                calls["ahead"] += 1

        agent._train = train_and_maybe_forget
        agent.learn(120)
        return agent, calls

    with_ahead, ahead_calls = run(True)
    without, plain_calls = run(False)
    assert ahead_calls["ahead"] == 50  # one per training phase: (120 - 20) steps / train_freq 2
    # each saved an acting call, but the last phase's: no step follows it
    assert plain_calls["computed"] - ahead_calls["computed"] == 49
    np.testing.assert_array_equal(with_ahead.replay.actions, without.replay.actions)
    for a, b in zip(with_ahead.q_net.variables, without.q_net.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert with_ahead._greedy_ahead is None  # dropped when learn returns: the weights may change before the next
