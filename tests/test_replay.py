"""FrameReplayBuffer: stacks rebuilt from single frames equal the observations the env gave,
across episode boundaries, wrap-around and several envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents_zoo.agents.replay import FrameReplayBuffer
from agents_zoo.core.envs import FINAL_OBSERVATION_KEY, sync_vector_env
from wrappers.fake_envs import RandomImageEnv
from wrappers.frame_stack import FrameStackObservation

FRAME = (1, 2, 2)


class StackedCounter:
    """Reference frame stacks for ``n_envs`` envs whose k-th frame is filled with a unique id."""

    def __init__(self, n_envs: int, stack: int, padding: str):
        self.n_envs, self.stack, self.padding = n_envs, stack, padding
        self.next_id = 1
        self.stacks = [self._reset() for _ in range(n_envs)]

    def _frame(self) -> np.ndarray:
        frame = np.full(FRAME, self.next_id % 251 + 1, dtype=np.uint8)  # never 0, so zero padding is visible
        frame.flat[0] = self.next_id // 251
        self.next_id += 1
        return frame

    def _reset(self) -> list[np.ndarray]:
        first = self._frame()
        fill = first if self.padding == "reset" else np.zeros(FRAME, np.uint8)
        return [fill] * (self.stack - 1) + [first]

    def observations(self) -> np.ndarray:
        return np.stack([np.concatenate(s) for s in self.stacks])

    def step(self, dones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance every env; returns (next observations incl. final ones, observations after autoreset)."""
        for stack in self.stacks:
            stack[:] = stack[1:] + [self._frame()]
        final = self.observations()
        for i in np.flatnonzero(dones):
            self.stacks[i] = self._reset()
        return final, self.observations()


def fill_and_check(n_envs: int, stack: int, padding: str, capacity: int, done_probability: float, steps: int,
                   seed: int) -> FrameReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = FrameReplayBuffer(capacity, n_envs, (stack * FRAME[0], *FRAME[1:]))
    reference = StackedCounter(n_envs, stack, padding)
    truth: dict[tuple[int, int], tuple] = {}
    obs = reference.observations()
    for _ in range(steps):
        dones = rng.random(n_envs) < done_probability
        terminations = (dones & (rng.random(n_envs) < 0.5)).astype(np.float32)  # the others are truncations
        actions = rng.integers(0, 5, n_envs)
        rewards = rng.normal(size=n_envs).astype(np.float32)
        next_obs, after_reset = reference.step(dones)
        slots = buffer.write_slot.copy()
        buffer.add(obs, actions, rewards, next_obs, terminations, dones)
        for env in range(n_envs):
            truth[(env, int(slots[env]))] = (obs[env], next_obs[env], actions[env], rewards[env], terminations[env])
        obs = after_reset
    envs, slots = np.nonzero(buffer.valid)
    assert len(envs) > 0
    windows = buffer.stack_windows(envs, slots)
    for i, (env, slot) in enumerate(zip(envs, slots)):
        want_obs, want_next, action, reward, terminated = truth[(int(env), int(slot))]
        np.testing.assert_array_equal(windows[i, :-1].reshape(want_obs.shape), want_obs)
        np.testing.assert_array_equal(windows[i, 1:].reshape(want_next.shape), want_next)
        assert buffer.actions[env, slot] == action and buffer.rewards[env, slot] == reward
        assert buffer.terminations[env, slot] == terminated
    return buffer


@pytest.mark.parametrize("padding", ["reset", "zero"])
@pytest.mark.parametrize("n_envs", [1, 3])
def test_stacks_are_rebuilt_exactly_across_episodes_and_wraparound(padding, n_envs):
    buffer = fill_and_check(n_envs, stack=4, padding=padding, capacity=60, done_probability=0.15, steps=200, seed=0)
    assert buffer.padding == padding
    assert len(buffer) <= 60


@settings(max_examples=40, deadline=None)
@given(n_envs=st.integers(1, 3), stack=st.integers(2, 5), padding=st.sampled_from(["reset", "zero"]),
       capacity=st.integers(3, 40), done_probability=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       steps=st.integers(1, 80), seed=st.integers(0, 2**16))
def test_property_every_valid_transition_matches_what_was_added(n_envs, stack, padding, capacity, done_probability,
                                                               steps, seed):
    fill_and_check(n_envs, stack, padding, capacity, done_probability, steps, seed)


def test_sampling_returns_only_valid_transitions_with_matching_batches():
    buffer = fill_and_check(2, 4, "reset", 50, 0.2, 120, seed=1)
    rng = np.random.default_rng(0)
    envs, slots = buffer.sample_indices(rng, 500)
    assert buffer.valid[envs, slots].all()
    batch = buffer.sample(rng, batch_size=8, n_batches=3)
    assert batch.observations.shape == (3, 8, 4, 2, 2) and batch.next_observations.shape == (3, 8, 4, 2, 2)
    assert batch.actions.shape == batch.rewards.shape == batch.terminations.shape == (3, 8)
    # Within a stack, consecutive observations share k - 1 frames.
    np.testing.assert_array_equal(batch.observations[:, :, 1:], batch.next_observations[:, :, :-1])


@pytest.mark.parametrize("padding", ["reset", "zero"])
def test_matches_the_frame_stack_wrapper_with_time_limits(padding):
    """The real wrapper chain: FrameStackObservation over random frames, truncation by TimeLimit."""
    def make():
        return FrameStackObservation(gym.wrappers.TimeLimit(RandomImageEnv(shape=(6, 6), episode_length=9), 7),
                                     num_stack=4, padding=padding)

    envs = sync_vector_env([make, make])
    obs, _ = envs.reset(seed=3)
    buffer = FrameReplayBuffer(40, 2, obs.shape[1:])
    truth = {}
    for _ in range(50):
        actions = np.array([0, 1])
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        dones = terminated | truncated
        stored_next = next_obs.copy()
        for i in np.flatnonzero(dones):
            stored_next[i] = infos[FINAL_OBSERVATION_KEY][i]
        slots = buffer.write_slot.copy()
        buffer.add(obs, actions, rewards, stored_next, terminated.astype(np.float32), dones)
        for env in range(2):
            truth[(env, int(slots[env]))] = (obs[env].copy(), stored_next[env].copy())
        obs = next_obs
    envs_idx, slots = np.nonzero(buffer.valid)
    windows = buffer.stack_windows(envs_idx, slots)
    for i, key in enumerate(zip(envs_idx.tolist(), slots.tolist())):
        np.testing.assert_array_equal(windows[i, :-1].reshape(4, 6, 6), truth[key][0])
        np.testing.assert_array_equal(windows[i, 1:].reshape(4, 6, 6), truth[key][1])


def test_atari_sized_transitions_take_under_8_kb():
    buffer = FrameReplayBuffer(1_000_000, 1, (4, 84, 84))  # np.zeros: pages are only touched when written
    assert buffer.bytes_per_transition <= 8 * 1024
    assert buffer.bytes_per_transition < 56_000 / 7  # SB3 stores ~56 KB per transition


def test_state_arrays_round_trip():
    buffer = fill_and_check(2, 4, "zero", 30, 0.2, 70, seed=2)
    restored = FrameReplayBuffer(30, 2, (4, 2, 2))
    restored.load_state_arrays(buffer.state_arrays())
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for a, b in zip(buffer.sample(rng_a, 16), restored.sample(rng_b, 16)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="slots per env"):
        FrameReplayBuffer(31, 2, (4, 2, 2)).load_state_arrays(buffer.state_arrays())


def test_start_new_episodes_cuts_without_leaking_frames():
    buffer = FrameReplayBuffer(20, 1, (4, 2, 2))
    reference = StackedCounter(1, 4, "reset")
    obs = reference.observations()
    next_obs, obs_after = reference.step(np.array([False]))
    buffer.add(obs, np.array([1]), np.array([0.0], np.float32), next_obs, np.array([0.0], np.float32), np.array([False]))
    buffer.start_new_episodes()  # e.g. a resumed learn() resets the env
    fresh = StackedCounter(1, 4, "reset")
    fresh.next_id = 100
    fresh.stacks = [fresh._reset()]
    obs = fresh.observations()
    next_obs, _ = fresh.step(np.array([False]))
    buffer.add(obs, np.array([2]), np.array([0.0], np.float32), next_obs, np.array([0.0], np.float32), np.array([False]))
    envs, slots = np.nonzero(buffer.valid)
    windows = buffer.stack_windows(envs, slots)
    np.testing.assert_array_equal(windows[-1, :-1].reshape(obs[0].shape), obs[0])


def test_bad_input_names_the_value():
    with pytest.raises(ValueError, match="capacity must be a positive int, got 0"):
        FrameReplayBuffer(0, 1, (4, 84, 84))
    with pytest.raises(ValueError, match=r"\(k \* 3, H, W\), got shape \(4, 84, 84\)"):
        FrameReplayBuffer(10, 1, (4, 84, 84), frame_channels=3)
    with pytest.raises(ValueError, match="cannot sample from an empty replay buffer"):
        FrameReplayBuffer(10, 1, (4, 2, 2)).sample(np.random.default_rng(0), 2)
    buffer = FrameReplayBuffer(10, 1, (4, 2, 2))
    unstacked = np.arange(16, dtype=np.uint8).reshape(1, 4, 2, 2)
    with pytest.raises(ValueError, match="not a frame stack"):
        buffer.add(unstacked, np.array([0]), np.zeros(1, np.float32), unstacked, np.zeros(1, np.float32),
                   np.array([False]))
    # Padded correctly at reset, but the next observation does not shift the stack.
    first, second = np.full((1, 4, 2, 2), 7, np.uint8), np.full((1, 4, 2, 2), 9, np.uint8)
    buffer = FrameReplayBuffer(10, 1, (4, 2, 2))
    buffer.add(first, np.array([0]), np.zeros(1, np.float32), second, np.zeros(1, np.float32), np.array([False]))
    with pytest.raises(ValueError, match="second-newest frame of an observation differs"):
        buffer.add(second, np.array([0]), np.zeros(1, np.float32), second, np.zeros(1, np.float32), np.array([False]))
