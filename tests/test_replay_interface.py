"""One replay-buffer interface (``core.buffers.TransitionBuffer``): the flat ``ReplayBuffer`` and the
one-frame-per-transition ``FrameReplayBuffer`` take the same ``add`` and hand back the same
``ReplayBatch``; fed the same frame stacks they hold the same transitions, n-step windows
included; DQN calls ``add`` without asking which one it has, and GAIL keeps its policy samples in
a ``ReplayBuffer`` (imitation's gen_replay_buffer) with the ring order it always had."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from gymnasium import spaces
from test_replay import FRAME, StackedCounter

from agents_zoo.agents.replay import FrameReplayBuffer
from agents_zoo.core.buffers import ReplayBatch, ReplayBuffer, TransitionBuffer


def test_both_buffers_take_one_add_signature():
    flat, frames = inspect.signature(ReplayBuffer.add), inspect.signature(FrameReplayBuffer.add)
    assert flat == frames == inspect.signature(TransitionBuffer.add)
    assert list(flat.parameters) == ["self", *ReplayBatch._fields[:2], "rewards", "next_observations", "terminations",
                                     "dones"]
    for member in ("start_new_episodes", "sample", "update_priorities", "state_arrays", "load_state_arrays"):
        assert inspect.signature(getattr(ReplayBuffer, member)) == inspect.signature(getattr(FrameReplayBuffer, member))


def test_the_frame_buffer_needs_dones():
    buffer = FrameReplayBuffer(8, 1, (2, 2, 2))
    obs = np.zeros((1, 2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="needs dones"):
        buffer.add(obs, np.array([0]), np.zeros(1, np.float32), obs, np.zeros(1, np.float32))


def _transitions(batch: ReplayBatch) -> set[tuple]:
    return {(o.tobytes(), int(a), float(r), n.tobytes(), float(t), float(d))
            for o, a, r, n, t, d in zip(batch.observations, batch.actions, batch.rewards, batch.next_observations,
                                        batch.terminations, batch.discounts)}


@pytest.mark.parametrize("n_steps", [1, 3])
@pytest.mark.parametrize("n_envs", [1, 3])
def test_fed_the_same_stacks_both_buffers_hold_the_same_transitions(n_steps, n_envs):
    stack, steps = 4, 30
    shape = (stack * FRAME[0], *FRAME[1:])
    space = spaces.Box(0, 255, shape, np.uint8)
    buffers = [ReplayBuffer(200, space, spaces.Discrete(5), n_envs=n_envs, n_steps=n_steps, gamma=0.5),
               FrameReplayBuffer(200, n_envs, shape, n_steps=n_steps, gamma=0.5)]
    rng = np.random.default_rng(n_steps * 10 + n_envs)
    reference = StackedCounter(n_envs, stack, "reset")
    obs = reference.observations()
    for _ in range(steps):
        dones = rng.random(n_envs) < 0.15
        terminations = (dones & (rng.random(n_envs) < 0.5)).astype(np.float32)
        actions, rewards = rng.integers(0, 5, n_envs), rng.normal(size=n_envs).astype(np.float32)
        next_obs, after_reset = reference.step(dones)
        for buffer in buffers:
            buffer.add(obs, actions, rewards, next_obs, terminations, dones)  # one call, either buffer
        obs = after_reset
    flat, frames = (buffer.sample(np.random.default_rng(0), 64, n_batches=100) for buffer in buffers)
    assert type(flat) is type(frames) is ReplayBatch
    for field in ReplayBatch._fields:
        assert getattr(flat, field).shape[:2] == getattr(frames, field).shape[:2] == (100, 64), field
        assert getattr(flat, field).shape == getattr(frames, field).shape, field
    rows = [ReplayBatch(*(value.reshape(-1, *value.shape[2:]) for value in batch)) for batch in (flat, frames)]
    assert len(buffers[0]) == len(buffers[1]) == steps * n_envs
    assert _transitions(rows[0]) == _transitions(rows[1])
    assert len(_transitions(rows[0])) == steps * n_envs


@pytest.mark.parametrize("capacity", [24, 100])
def test_gail_keeps_its_policy_samples_in_a_replay_buffer_in_the_old_ring_order(capacity):
    """Each round adds the rollout's newest min(capacity, 64) transitions where the last round
    stopped: the ring GAIL kept by hand before it used ReplayBuffer."""
    pytest.importorskip("seals")
    from agents_zoo.agents.gail import GAIL
    from agents_zoo.demonstrations import rollout

    class Threshold:
        def predict(self, observations, deterministic=True):
            return (np.asarray(observations)[:, 2] > 0).astype(np.int64), None

    demos = rollout(Threshold(), "seals/CartPole-v0", 1, seed=0)
    agent = GAIL("seals/CartPole-v0", demonstrations=demos, seed=0, n_envs=2, n_steps=32, batch_size=32, n_epochs=1,
                 demo_batch_size=8, n_disc_updates_per_round=1, gen_replay_buffer_capacity=capacity)
    kept = min(capacity, 64)
    assert isinstance(agent.gen_replay, ReplayBuffer) and agent.gen_replay.n_envs == kept
    for round_index in range(3):
        agent.learn(64, reset_num_timesteps=round_index == 0)  # one rollout of 2 x 32 transitions
        rollout_rows = {key: value[-kept:] for key, value in agent.last_rollout.items()}  # flat, time-major
        where = (round_index * kept + np.arange(kept)) % capacity
        np.testing.assert_array_equal(agent.gen_replay.observations[where], rollout_rows["observations"])
        np.testing.assert_array_equal(agent.gen_replay.actions[where], rollout_rows["actions"])
        np.testing.assert_array_equal(agent.gen_replay.next_observations[where], rollout_rows["next_observations"])
        assert len(agent.gen_replay) == min(capacity, (round_index + 1) * kept)
