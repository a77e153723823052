"""n-step returns and prioritized replay: the sum tree against brute force, sampling frequencies,
importance weights and n-step targets by hand, in both replay buffers, and DQN smoke runs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from agents_zoo.agents.dqn import DQN, DQNConfig
from agents_zoo.agents.replay import FrameReplayBuffer
from agents_zoo.core.buffers import ProportionalPriorities, ReplayBuffer, SumTree, n_step_returns

OBS_SPACE = spaces.Box(-np.inf, np.inf, (1,), np.float32)
ACTION_SPACE = spaces.Discrete(2)
TINY = dict(buffer_size=500, learning_starts=100, batch_size=16, train_freq=4, gradient_steps=2,
            target_update_interval=20, policy_hidden_sizes=(16,), exploration_fraction=0.5)


class FixedUniforms:
    """Stands in for a Generator: ``random`` returns the given uniforms (for stratified sampling by hand)."""

    def __init__(self, uniforms):
        self.uniforms = np.asarray(uniforms, dtype=np.float64)

    def random(self, shape):
        return self.uniforms.reshape(shape)


# ---------------------------------------------------------------------- sum tree
@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_sum_tree_matches_brute_force_after_any_updates(size, data):
    tree = SumTree(size)
    reference = np.zeros(size)
    for _ in range(data.draw(st.integers(1, 6))):
        indices = np.array(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=12)))
        values = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 3.5, 1e-6, 7.0]),
                                             min_size=len(indices), max_size=len(indices))))
        tree.update(indices, values)
        for index, value in zip(indices, values):  # the last of repeated indices wins, as in NumPy assignment
            reference[index] = value
        np.testing.assert_array_equal(tree.leaves, reference)
        assert tree.total == pytest.approx(reference.sum(), rel=1e-12, abs=1e-12)
        inner = np.arange(1, tree.leaf_base)
        np.testing.assert_allclose(tree.nodes[inner], tree.nodes[2 * inner] + tree.nodes[2 * inner + 1], rtol=1e-12)
    if reference.sum() > 0:
        # The midpoint of each positive leaf's prefix-sum interval finds that leaf (brute force: cumsum).
        upper = np.cumsum(reference)
        positive = np.flatnonzero(reference > 0)
        np.testing.assert_array_equal(tree.find(upper[positive] - reference[positive] / 2), positive)
        # Masses at or past the total (round-off) still land on a positive leaf.
        assert reference[tree.find(np.array([tree.total, tree.total * (1 + 1e-12)]))].min() > 0


def test_sum_tree_rejects_bad_values_and_indices():
    tree = SumTree(5)
    assert tree.leaf_base == 8 and tree.depth == 3 and SumTree(1).depth == 0
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update([1], [-1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update([1], [np.nan])
    with pytest.raises(IndexError, match="out of range 0..4"):
        tree.update([5], [1.0])


def test_sampling_frequencies_follow_the_priorities():
    """Chi-square over 64,000 draws (fixed seed): observed counts against count * p_i / sum p."""
    priorities = np.array([1.0, 2.0, 0.0, 3.0, 4.0, 0.5, 0.0, 6.0, 2.5, 1.0, 0.25])
    sampler = ProportionalPriorities(len(priorities), alpha=1.0, epsilon=0.0)
    sampler.tree.update(np.arange(len(priorities)), priorities)
    indices, _ = sampler.sample(np.random.default_rng(0), batch_size=64, n_batches=1000, n_transitions=9, beta=0.4)
    counts = np.bincount(indices, minlength=len(priorities))
    assert counts[priorities == 0].sum() == 0  # empty slots are never drawn
    expected = len(indices) * priorities / priorities.sum()
    positive = priorities > 0
    chi_square = (((counts - expected) ** 2)[positive] / expected[positive]).sum()
    # 8 degrees of freedom: P(chi2 > 26.1) = 0.001. Stratified draws vary less than independent ones.
    assert chi_square < 26.1, (chi_square, counts, expected)


def test_alpha_zero_samples_uniformly_and_weights_are_one():
    sampler = ProportionalPriorities(6, alpha=0.0, epsilon=1e-6)
    sampler.add(np.arange(6))
    sampler.update(np.arange(6), np.array([0.0, 1.0, 10.0, 100.0, 3.0, 0.5]))
    np.testing.assert_array_equal(sampler.tree.leaves, np.ones(6))
    _, weights = sampler.sample(np.random.default_rng(1), 6, 3, n_transitions=6, beta=0.7)
    np.testing.assert_allclose(weights, 1.0)


def test_importance_weights_by_hand_and_new_transitions_get_the_max_priority():
    buffer = ReplayBuffer(8, OBS_SPACE, ACTION_SPACE, prioritized=True, alpha=0.5, epsilon=1.0)
    for t in range(4):
        buffer.add(np.array([[t]]), np.array([0]), np.array([0.0]), np.array([[t + 1]]), np.array([0.0]))
    np.testing.assert_array_equal(buffer.priorities.tree.leaves[:4], 1.0)  # max priority before any update: 1
    # p = |delta| + 1 = 1, 4, 9, 16; p^0.5 = 1, 2, 3, 4; P = 0.1, 0.2, 0.3, 0.4; prefix intervals
    # [0, 1), [1, 3), [3, 6), [6, 10).
    buffer.update_priorities(np.arange(4), np.array([0.0, -3.0, 8.0, 15.0]))
    # Strata of 10 / 4 = 2.5: masses (j + u_j) * 2.5 = 0.5, 3.75, 6.25, 9.75 -> leaves 0, 2, 3, 3.
    batch = buffer.sample(FixedUniforms([0.2, 0.5, 0.5, 0.9]), batch_size=4, beta=0.5)
    np.testing.assert_array_equal(batch.indices, [0, 2, 3, 3])
    np.testing.assert_array_equal(batch.observations[:, 0], [0, 2, 3, 3])
    # w = (N P)^-beta = (4 * [0.1, 0.3, 0.4, 0.4])^-0.5, divided by the batch's largest (the first).
    np.testing.assert_allclose(batch.weights, [1.0, np.sqrt(0.4 / 1.2), 0.5, 0.5], rtol=1e-6)
    buffer.add(np.array([[4]]), np.array([0]), np.array([0.0]), np.array([[5]]), np.array([0.0]))
    assert buffer.priorities.max_priority == 16.0
    assert buffer.priorities.tree.leaves[4] == 4.0  # 16^0.5: the largest priority seen
    uniform = ReplayBuffer(8, OBS_SPACE, ACTION_SPACE)
    uniform.add(np.zeros((1, 1)), np.array([0]), np.array([0.0]), np.zeros((1, 1)), np.array([0.0]))
    np.testing.assert_array_equal(uniform.sample(np.random.default_rng(0), 3).weights, 1.0)


def test_non_finite_td_errors_are_refused():
    buffer = ReplayBuffer(4, OBS_SPACE, ACTION_SPACE, prioritized=True)
    buffer.add(np.zeros((1, 1)), np.array([0]), np.array([0.0]), np.zeros((1, 1)), np.array([0.0]))
    with pytest.raises(ValueError, match="non-finite TD errors"):
        buffer.update_priorities(np.array([0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="prioritized=True"):
        ReplayBuffer(4, OBS_SPACE, ACTION_SPACE).update_priorities(np.array([0]), np.array([1.0]))


# ---------------------------------------------------------------------- n-step returns by hand
def test_n_step_returns_stop_at_the_first_break():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, np.inf]], np.float32)
    continues = np.array([[True, True], [True, False], [True, False]])
    returns, lengths = n_step_returns(rewards, continues, 0.5)
    np.testing.assert_array_equal(lengths, [3, 2, 2])
    np.testing.assert_array_equal(returns, [3.0, 2.0, 2.0])  # a reward outside the window never counts


def by_index(buffer, rng_seed=0, draws=400):
    """Every stored transition's sampled values, keyed by its buffer index."""
    batch = buffer.sample(np.random.default_rng(rng_seed), draws)
    rows = {}
    for i, index in enumerate(batch.indices.tolist()):
        rows[index] = (float(batch.rewards[i]), float(batch.next_observations[i].ravel()[0]),
                       float(batch.terminations[i]), float(batch.discounts[i]), float(batch.observations[i].ravel()[0]))
    return rows


def flat_buffer_with(steps, capacity, n_envs=1, n_steps=3, gamma=0.5):
    """Steps are (obs, reward, next_obs, terminated, done) per env; obs values name the steps."""
    buffer = ReplayBuffer(capacity, OBS_SPACE, ACTION_SPACE, n_envs=n_envs, n_steps=n_steps, gamma=gamma)
    for step in steps:
        obs, rewards, next_obs, terminated, done = (np.array(column, dtype=np.float32) for column in zip(*step))
        buffer.add(obs[:, None], np.zeros(n_envs, np.int64), rewards, next_obs[:, None], terminated, done.astype(bool))
    return buffer


# One env: steps 0-2 form an episode terminated at step 2, steps 3-4 one truncated at step 4 (its
# final observation is 104), steps 5-6 the running one. obs = step, next obs = step + 1 (or 100 + step).
EPISODES = [(0, 1, 1, 0, 0), (1, 2, 2, 0, 0), (2, 4, 102, 1, 1),
            (3, 8, 4, 0, 0), (4, 16, 104, 0, 1),
            (5, 32, 6, 0, 0), (6, 64, 7, 0, 0)]
# step: (n-step reward, bootstrap observation, terminated, discount) for n = 3, gamma = 0.5
EXPECTED = {
    0: (1 + 0.5 * 2 + 0.25 * 4, 102, 1.0, 0.125),  # the termination at step 2 is inside the window
    1: (2 + 0.5 * 4, 102, 1.0, 0.25),
    2: (4, 102, 1.0, 0.5),
    3: (8 + 0.5 * 16, 104, 0.0, 0.25),  # truncated at step 4: bootstrap from its final observation, gamma^2
    4: (16, 104, 0.0, 0.5),
    5: (32 + 0.5 * 64, 7, 0.0, 0.25),  # step 6 is the newest: nothing stored after it yet
    6: (64, 7, 0.0, 0.5),
}


def test_flat_n_step_targets_with_termination_and_truncation_by_hand():
    buffer = flat_buffer_with([[step] for step in EPISODES], capacity=10)
    rows = by_index(buffer)
    assert sorted(rows) == list(range(7))
    for index, (reward, bootstrap, terminated, discount) in EXPECTED.items():
        assert rows[index][:4] == pytest.approx((reward, bootstrap, terminated, discount)), index


def test_flat_n_step_across_the_ring_wrap_by_hand():
    # capacity 5 keeps steps 2..6: step 5 sits at index 0, step 6 at index 1, step 2 at index 2.
    buffer = flat_buffer_with([[step] for step in EPISODES], capacity=5)
    rows = by_index(buffer)
    assert {index: row[4] for index, row in rows.items()} == {0: 5, 1: 6, 2: 2, 3: 3, 4: 4}
    for index, step in {0: 5, 1: 6, 2: 2, 3: 3, 4: 4}.items():
        assert rows[index][:4] == pytest.approx(EXPECTED[step]), step
    # A window that wraps: steps 4 (index 4) -> 5 (index 0) -> 6 (index 1), with no episode end.
    continuing = [[(t, 2.0 ** t, t + 1, 0, 0)] for t in range(7)]
    rows = by_index(flat_buffer_with(continuing, capacity=5))
    assert rows[4][:4] == pytest.approx((16 + 0.5 * 32 + 0.25 * 64, 7, 0.0, 0.125))
    assert rows[1][:4] == pytest.approx((64, 7, 0.0, 0.5))  # the newest step never reaches the oldest (index 2)


def test_flat_n_step_keeps_each_envs_stream_apart():
    # Two envs, capacity 7 (not a multiple of 2): env 1's rewards are 1000 x env 0's, env 1 ends at step 1.
    steps = [[(10 * t, 2.0 ** t, 10 * t + 10, 0, 0), (10 * t + 1, 1000 * 2.0 ** t, 10 * t + 11, 0, int(t == 1))]
             for t in range(5)]
    buffer = flat_buffer_with(steps, capacity=7, n_envs=2)
    rows = {row[4]: row[:4] for row in by_index(buffer).values()}  # keyed by obs
    # Stored: the last 7 of 10 transitions (env 1 step 1 onwards).
    assert sorted(rows) == [11, 20, 21, 30, 31, 40, 41]
    assert rows[20] == pytest.approx((4 + 0.5 * 8 + 0.25 * 16, 50, 0.0, 0.125))
    assert rows[11] == pytest.approx((2000, 21, 0.0, 0.5))  # env 1's episode ended (truncated) at step 1
    assert rows[21] == pytest.approx((4000 + 0.5 * 8000 + 0.25 * 16000, 51, 0.0, 0.125))
    assert rows[40] == pytest.approx((16, 50, 0.0, 0.5)) and rows[31] == pytest.approx((8000 + 8000, 51, 0.0, 0.25))


def test_flat_start_new_episodes_and_old_files_cut_the_streams():
    continuing = [[(t, 1.0, t + 1, 0, 0)] for t in range(4)]
    buffer = flat_buffer_with(continuing, capacity=10)
    buffer.start_new_episodes()  # e.g. learn() reset the envs
    buffer.add(np.array([[50.0]]), np.array([0]), np.array([1.0]), np.array([[51.0]]), np.array([0.0]),
               np.array([False]))
    rows = by_index(buffer)
    assert rows[3][:4] == pytest.approx((1.0, 4, 0.0, 0.5))  # not continued into the new episode
    assert rows[1][:4] == pytest.approx((1.75, 4, 0.0, 0.125))
    # A file saved before n-step returns (no ends): every loaded transition ends its stream.
    arrays = buffer.state_arrays()
    del arrays["ends"], arrays["layout"]
    restored = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, n_steps=3, gamma=0.5)
    restored.load_state_arrays(arrays)
    assert all(discount == 0.5 for _, _, _, discount, _ in by_index(restored).values())
    resaved = ReplayBuffer(10, OBS_SPACE, ACTION_SPACE, n_steps=3, gamma=0.5)
    resaved.load_state_arrays(buffer.state_arrays())
    assert by_index(resaved) == by_index(buffer)
    with pytest.raises(ValueError, match="needs dones"):
        resaved.add(np.zeros((1, 1)), np.array([0]), np.array([0.0]), np.zeros((1, 1)), np.array([0.0]))


# ---------------------------------------------------------------------- n-step in the frame buffer
def frame_stream(steps_per_env, capacity, stack=2, n_steps=3, gamma=0.5, prioritized=False):
    """A FrameReplayBuffer fed stacks of 1x1x1 frames whose values name them: env e's frames are
    numbered 100 e + 2, 100 e + 3, ... in the order it makes them (a reset makes one).
    ``steps_per_env`` is, per step, a list of (reward, terminated, done) per env."""
    n_envs = len(steps_per_env[0])
    buffer = FrameReplayBuffer(capacity, n_envs, (stack, 1, 1), n_steps=n_steps, gamma=gamma, prioritized=prioritized)
    next_id = [100 * env + 1 for env in range(n_envs)]

    def frame(env):
        next_id[env] += 1
        return next_id[env]

    def reset(env):
        return [frame(env)] * stack

    stacks = [reset(env) for env in range(n_envs)]
    for step in steps_per_env:
        obs = np.array(stacks, np.uint8).reshape(n_envs, stack, 1, 1)
        finals = []
        for env, (_, _, done) in enumerate(step):
            stacks[env] = stacks[env][1:] + [frame(env)]
            finals.append(list(stacks[env]))
            if done:
                stacks[env] = reset(env)
        rewards, terminated, dones = (np.array(column) for column in zip(*step))
        buffer.add(obs, np.zeros(n_envs, np.int64), rewards.astype(np.float32),
                   np.array(finals, np.uint8).reshape(n_envs, stack, 1, 1), terminated.astype(np.float32),
                   dones.astype(bool))
    return buffer


def frame_rows(buffer, draws=600):
    batch = buffer.sample(np.random.default_rng(0), draws)
    return {int(batch.observations[i, -1, 0, 0]): (float(batch.rewards[i]), int(batch.next_observations[i, -1, 0, 0]),
                                                  float(batch.terminations[i]), float(batch.discounts[i]),
                                                  tuple(batch.next_observations[i, :, 0, 0].tolist()))
            for i in range(draws)}


def test_frame_buffer_n_step_targets_by_hand():
    # The same episodes as the flat test; frames are numbered 2, 3, ... in the order they are made.
    steps = [[(r, term, done)] for _, r, _, term, done in EPISODES]
    rows = frame_rows(frame_stream(steps, capacity=20))
    # Episode 1: obs frames 2, 3, 4, final frame 5. Episode 2 resets to frame 6: obs 6, 7, final 8.
    # Episode 3: obs 9, 10, pending frame 11.
    assert rows[2][:4] == pytest.approx((3.0, 5, 1.0, 0.125))  # termination inside the window
    assert rows[3][:4] == pytest.approx((4.0, 5, 1.0, 0.25))
    assert rows[6][:4] == pytest.approx((16.0, 8, 0.0, 0.25))  # truncation inside the window: final frame 8
    assert rows[6][4] == (7, 8)  # the bootstrap observation is the full stack of the final observation
    assert rows[7][:4] == pytest.approx((16.0, 8, 0.0, 0.5))
    assert rows[9][:4] == pytest.approx((64.0, 11, 0.0, 0.25))  # stops at the newest stored step
    assert rows[10][:4] == pytest.approx((64.0, 11, 0.0, 0.5))
    assert sorted(rows) == [2, 3, 4, 6, 7, 9, 10]


def test_frame_buffer_n_step_across_the_ring_wrap_and_per_env():
    # Rings of ceil(8 / 2) + 2 + 1 = 7 slots. Env 0: one episode of 10 steps; step t sits in slot
    # t % 7, so the ring keeps steps 6-9 and the window of step 6 (slot 6) wraps to slots 0 and 1.
    # Env 1 (rewards x 1000) is truncated at step 8 (slot 1; final frame in slot 2) and step 9 starts anew.
    steps = [[(2.0 ** t, 0, 0), (1000.0 * 2 ** t, 0, int(t == 8))] for t in range(10)]
    buffer = frame_stream(steps, capacity=8, n_steps=3)
    assert buffer.slots == 7
    rows = frame_rows(buffer)
    # Env 0's step t has newest frame 2 + t; env 1's 102 + t up to step 8, its final frame is 111
    # and the reset makes 112 (step 9's), then the pending frame 113.
    assert sorted(rows) == [8, 9, 10, 11, 109, 110, 112]
    assert rows[8][:4] == pytest.approx((64 + 0.5 * 128 + 0.25 * 256, 11, 0.0, 0.125))  # step 6, wraps
    assert rows[10][:4] == pytest.approx((256 + 0.5 * 512, 12, 0.0, 0.25))  # step 8: step 9 is the newest
    assert rows[109][:4] == pytest.approx((1000 * (128 + 0.5 * 256), 111, 0.0, 0.25))  # truncated at step 8
    assert rows[109][4] == (110, 111)
    assert rows[110][:4] == pytest.approx((1000 * 256, 111, 0.0, 0.5))
    assert rows[112][:4] == pytest.approx((1000 * 512, 113, 0.0, 0.5))


def test_frame_buffer_prioritized_leaves_follow_validity_and_round_trip():
    steps = [[(1.0, int(t % 5 == 4), int(t % 5 == 4)), (2.0, 0, int(t % 3 == 2))] for t in range(40)]
    buffer = frame_stream(steps, capacity=12, prioritized=True)
    leaves = buffer.priorities.tree.leaves.reshape(2, buffer.slots)
    np.testing.assert_array_equal(leaves > 0, buffer.valid)  # only sampleable slots can be drawn
    batch = buffer.sample(np.random.default_rng(3), 8, beta=0.4)
    assert buffer.valid.reshape(-1)[batch.indices].all()
    buffer.update_priorities(batch.indices, np.linspace(0.0, 3.0, 8))
    restored = FrameReplayBuffer(12, 2, (2, 1, 1), n_steps=3, gamma=0.5, prioritized=True)
    restored.load_state_arrays(buffer.state_arrays())
    np.testing.assert_array_equal(restored.priorities.tree.leaves, buffer.priorities.tree.leaves)
    for a, b in zip(buffer.sample(np.random.default_rng(5), 8), restored.sample(np.random.default_rng(5), 8)):
        np.testing.assert_array_equal(a, b)
    arrays = buffer.state_arrays()  # a file saved without priorities: every valid slot at the max priority
    del arrays["priorities"], arrays["max_priority"]
    restored.load_state_arrays(arrays)
    np.testing.assert_array_equal(restored.priorities.tree.leaves.reshape(2, -1), restored.valid.astype(float))


def test_atari_sized_prioritized_transitions_stay_under_8_kb():
    buffer = FrameReplayBuffer(1_000_000, 1, (4, 84, 84), n_steps=3, prioritized=True)
    assert buffer.bytes_per_transition <= 8 * 1024


# ---------------------------------------------------------------------- DQN
def test_config_fields_are_validated():
    assert DQNConfig().n_steps == 1 and DQNConfig().prioritized_replay is False
    for settings_, message in [({"n_steps": 0}, "n_steps must be >= 1, got 0"),
                               ({"prioritized_replay_alpha": -0.1}, "prioritized_replay_alpha must be in"),
                               ({"prioritized_replay_beta0": 1.5}, "prioritized_replay_beta0 must be in"),
                               ({"prioritized_replay_eps": 0.0}, "prioritized_replay_eps must be in"),
                               ({"prioritized_replay": 1}, "prioritized_replay must be true or false")]:
        with pytest.raises(ValueError, match=message):
            DQNConfig(**settings_)


def test_prioritized_step_with_unit_weights_is_the_uniform_step_and_returns_td_errors():
    agent = DQN("CartPole-v1", seed=3, **TINY)
    state = [*agent.q_net.variables, *agent.q_net_target.variables, *agent.optimizer.variables]
    initial = [v.numpy() for v in state]
    rng = np.random.default_rng(0)
    obs, next_obs = (rng.normal(size=(16, 4)).astype(np.float32) for _ in range(2))
    actions = rng.integers(0, 2, size=16)
    rewards = rng.normal(size=16).astype(np.float32)
    terminations = (rng.random(16) < 0.2).astype(np.float32)
    discounts = np.full(16, 0.99 ** 3, np.float32)
    q, next_target, next_online = (net(x).numpy() for net, x in
                                   [(agent.q_net, obs), (agent.q_net_target, next_obs), (agent.q_net, next_obs)])
    targets = rewards + discounts * (1 - terminations) * next_target[np.arange(16), next_online.argmax(1)]
    _, _, errors = agent._prioritized_step(tf.constant(0.0), obs, actions, rewards, next_obs, terminations,
                                           discounts, np.ones(16, np.float32))
    np.testing.assert_allclose(errors.numpy(), np.abs(q[np.arange(16), actions] - targets), rtol=1e-5, atol=1e-5)
    weighted = [v.numpy() for v in agent.q_net.variables]
    for variable, value in zip(state, initial):
        variable.assign(value)
    agent._train_phase(tf.constant(0.0), None, obs[None], actions[None], rewards[None], next_obs[None],
                       terminations[None], discounts[None])
    for a, b in zip(weighted, agent.q_net.variables):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)


def test_beta_anneals_linearly_to_one():
    agent = DQN("CartPole-v1", seed=0, prioritized_replay=True, **TINY)
    agent._total_timesteps = 1000
    agent.num_timesteps = 0
    assert agent.prioritized_replay_beta() == pytest.approx(0.4)
    agent.num_timesteps = 500
    assert agent.prioritized_replay_beta() == pytest.approx(0.7)
    agent.num_timesteps = 1000
    assert agent.prioritized_replay_beta() == pytest.approx(1.0)


@pytest.mark.parametrize("settings_", [{"n_steps": 3}, {"prioritized_replay": True},
                                       {"n_steps": 3, "prioritized_replay": True, "n_envs": 2}])
def test_cartpole_smoke_runs_with_finite_loss(settings_):
    agent = DQN("CartPole-v1", seed=0, **{**TINY, **settings_})
    losses = []
    agent.logger.record = lambda key, value, *args, **kwargs: losses.append(value) if key == "train/loss" else None
    agent.learn(600)
    assert agent._n_updates > 0 and losses and np.isfinite(losses).all()
    if agent.replay.priorities is not None:
        leaves = agent.replay.priorities.tree.leaves[:len(agent.replay)]
        assert (leaves > 0).all() and len(np.unique(leaves)) > 1  # updated from TD errors


def test_pong_frame_buffer_with_n_step_and_priorities_trains():
    agent = DQN("agents_zoo/Pong-dqn-v0", seed=0, learning_starts=100, buffer_size=1000, batch_size=8, n_envs=2,
                target_update_interval=50, n_steps=3, prioritized_replay=True)
    agent.learn(200)
    assert isinstance(agent.replay, FrameReplayBuffer) and agent._n_updates > 0
    leaves = agent.replay.priorities.tree.leaves.reshape(2, -1)
    np.testing.assert_array_equal(leaves > 0, agent.replay.valid)


def test_save_load_keeps_priorities_and_old_files_still_load(tmp_path):
    from agents_zoo.core.serialization import load_archive, save_archive

    agent = DQN("CartPole-v1", seed=0, n_steps=3, prioritized_replay=True, **TINY).learn(300)
    path = agent.save(tmp_path / "per.zip", include_replay_buffer=True)
    loaded = DQN.load(path, env="CartPole-v1")
    assert loaded.config.n_steps == 3 and loaded.config.prioritized_replay
    np.testing.assert_array_equal(loaded.replay.priorities.tree.leaves, agent.replay.priorities.tree.leaves)
    assert loaded.replay.priorities.max_priority == agent.replay.priorities.max_priority
    np.testing.assert_array_equal(loaded.replay.ends, agent.replay.ends)
    loaded.learn(100, reset_num_timesteps=False)
    # A file from before n-step and priorities: no ends, layout, priorities or max_priority arrays.
    archive = load_archive(path)
    for key in ("replay/ends", "replay/layout", "replay/priorities", "replay/max_priority"):
        archive.arrays.pop(key)
    old = save_archive(tmp_path / "old.zip", kind=archive.kind, config=archive.config, arrays=archive.arrays,
                       metadata=archive.metadata)
    loaded = DQN.load(old, env="CartPole-v1")
    size = len(loaded.replay)
    assert size == 300 and loaded.replay.ends[:size].all()
    np.testing.assert_array_equal(loaded.replay.priorities.tree.leaves[:size], 1.0)
