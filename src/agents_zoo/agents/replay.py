"""A replay buffer for stacked image frames that stores each frame once.

An Atari observation is a stack of the last ``k`` = 4 frames, so a plain buffer of
(obs, next_obs) pairs holds every frame ``2 k`` = 8 times (~56 KB per transition for 84x84
frames; SB3's ``optimize_memory_usage`` halves that). Here each env has its own ring of slots;
a slot holds only the *newest* frame of one observation plus that step's action, reward and
termination, and stacks are rebuilt at sample time from the ``k`` slots before it (as in the
DQN Nature paper's own code and Dopamine's circular replay buffer): ~7 KB per transition.

Slot layout, per env: the observation of step t lives in slot s, the next observation in slot
s + 1. When an episode ends, slot s + 1 holds its final observation (the truncation bootstrap
target) and the next episode starts at slot s + 2, so the final frame costs one extra slot per
episode. ``age[s]`` = min(steps since the episode started, k - 1) tells how far back a stack
may reach; older positions are padded as the frame-stack wrapper pads at reset: the episode's
first frame repeated (``padding="reset"``, gymnasium's ``FrameStack`` and our wrappers) or zeros
(``padding="zero"``, SB3's ``VecFrameStack``). The padding is detected from the first
observation and checked at every episode start, so frames of an earlier episode never leak in.

n-step returns (``n_steps > 1``) are summed at sample time from these single-step slots, so
they cost no memory: the slots after s that are still ``valid`` are the same episode's next
steps (a slot after an episode's end holds its final observation and is never valid, nor is the
pending newest observation, and a slot is overwritten only after every slot before it in its
ring), so a window stops at the first slot that is not, and bootstraps from the stack that ends
there. Prioritized replay keeps one sum-tree leaf per slot (env-major), 0 for slots that hold
no sampleable transition: 16 bytes per transition with the tree's inner nodes.
"""

from __future__ import annotations

import math

import numpy as np

from agents_zoo.core.buffers import ProportionalPriorities, ReplayBatch, n_step_returns

PADDINGS = ("reset", "zero")


class FrameReplayBuffer:
    """A circular replay buffer of channel-first frame stacks ``(k * C, H, W)``, one frame stored per step.

    ``capacity`` is in transitions over all envs; each env gets ``ceil(capacity / n_envs)`` slots
    plus ``k + 1`` spare ones for the pending next observation and the stacks that a wrap-around
    overwrites. ``frame_channels`` is C: 1 for gray stacks, 3 for stacked RGB frames. ``n_steps``,
    ``gamma``, ``prioritized``, ``alpha`` and ``epsilon`` are as in :class:`~agents_zoo.core.buffers.ReplayBuffer`.
    """

    def __init__(self, capacity: int, n_envs: int, observation_shape: tuple[int, ...], frame_channels: int = 1,
                 action_dtype: np.dtype = np.dtype(np.int32), n_steps: int = 1, gamma: float = 0.99,
                 prioritized: bool = False, alpha: float = 0.6, epsilon: float = 1e-6):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"replay buffer capacity must be a positive int, got {capacity!r}")
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
        if len(observation_shape) != 3 or observation_shape[0] % frame_channels != 0:
            raise ValueError(f"expected channel-first stacks (k * {frame_channels}, H, W), got shape {observation_shape}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
        self.n_steps = int(n_steps)
        self.gamma = float(gamma)
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.frame_channels = int(frame_channels)
        self.stack = self.observation_shape[0] // self.frame_channels
        self.n_envs = int(n_envs)
        self.capacity = int(capacity)
        self.slots = math.ceil(capacity / n_envs) + self.stack + 1
        frame_shape = (self.frame_channels, *self.observation_shape[1:])
        self.frames = np.zeros((n_envs, self.slots, *frame_shape), dtype=np.uint8)
        self.actions = np.zeros((n_envs, self.slots), dtype=action_dtype)
        self.rewards = np.zeros((n_envs, self.slots), dtype=np.float32)
        self.terminations = np.zeros((n_envs, self.slots), dtype=np.float32)
        self.ages = np.zeros((n_envs, self.slots), dtype=np.uint8)
        self.valid = np.zeros((n_envs, self.slots), dtype=bool)  # slot holds a complete, sampleable transition
        self.write_slot = np.zeros(n_envs, dtype=np.int64)  # where the next observation's frame goes
        self.episode_starts = np.ones(n_envs, dtype=bool)  # the next add starts an episode
        self.high_water = 0  # slots ever written in the fullest env ring (the range sampling draws from)
        self.padding: str | None = None
        self.priorities = ProportionalPriorities(n_envs * self.slots, alpha, epsilon) if prioritized else None

    @property
    def nbytes(self) -> int:
        arrays = (self.frames, self.actions, self.rewards, self.terminations, self.ages, self.valid)
        return sum(a.nbytes for a in arrays) + (self.priorities.tree.nodes.nbytes if self.priorities else 0)

    @property
    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    def __len__(self) -> int:
        return int(self.valid.sum())

    # ------------------------------------------------------------------ adding
    def _newest(self, observations: np.ndarray) -> np.ndarray:
        return observations[:, -self.frame_channels:]

    def _check_padding(self, observations: np.ndarray) -> None:
        """Detect (once) and check how the stack was padded at reset: repeated first frame or zeros."""
        older = observations[:, :-self.frame_channels].reshape(len(observations), self.stack - 1, self.frame_channels,
                                                               *self.observation_shape[1:])
        newest = self._newest(observations)[:, None]
        repeats = bool(np.all(older == newest))
        zeros = not older.any()
        if self.padding is None and (repeats != zeros):
            self.padding = "reset" if repeats else "zero"
        if (self.padding == "reset" and not repeats) or (self.padding == "zero" and not zeros) or not (repeats or zeros):
            raise ValueError(
                f"the first observation of an episode is not a frame stack padded with "
                f"{self.padding or 'the first frame or zeros'}; FrameReplayBuffer needs stacks of {self.stack} frames "
                f"of {self.frame_channels} channel(s) as FrameStackObservation makes (set frame_channels, or "
                f"deduplicate_frames=False)")

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_observations: np.ndarray,
            terminations: np.ndarray, dones: np.ndarray | None = None) -> None:
        """One step of every env, as :meth:`~agents_zoo.core.buffers.TransitionBuffer.add`.
        ``next_observations`` holds the final observation where ``dones`` (an episode ended,
        terminated or truncated); ``terminations`` only marks true terminations. ``dones`` is
        required: where an episode ends decides where the next one's frames start."""
        if dones is None:
            raise ValueError("FrameReplayBuffer.add needs dones (terminated or truncated): the next episode's "
                             "frames start after an episode's final frame")
        envs = np.arange(self.n_envs)
        slot = self.write_slot
        starts = self.episode_starts
        if starts.any():
            self._check_padding(observations[starts])
            self.frames[starts, slot[starts]] = self._newest(observations[starts])
            self.ages[starts, slot[starts]] = 0
        continuing = ~starts
        if continuing.any() and self.stack > 1:
            # The stack property this buffer relies on: obs_t's second-newest frame is obs_{t-1}'s newest.
            channels = self.frame_channels
            previous = self.frames[continuing, (slot[continuing] - 1) % self.slots]
            second_newest = observations[continuing, -2 * channels:-channels]
            if not np.array_equal(previous, second_newest):
                raise ValueError(
                    f"observations are not frame stacks of {self.stack} x {channels} channel(s): the second-newest "
                    f"frame of an observation differs from the newest frame of the one before (pass them in step "
                    f"order, set frame_channels, or use deduplicate_frames=False)")
        self.actions[envs, slot] = actions
        self.rewards[envs, slot] = rewards
        self.terminations[envs, slot] = terminations
        self.valid[envs, slot] = True
        next_slot = (slot + 1) % self.slots
        self.frames[envs, next_slot] = self._newest(next_observations)
        self.ages[envs, next_slot] = np.minimum(self.ages[envs, slot] + 1, self.stack - 1)
        # next_slot: its action is not known yet (or it is a final observation). The k oldest slots
        # after it may build their stacks from slots just overwritten.
        invalid = (next_slot[:, None] + np.arange(0, self.stack + 1)) % self.slots
        self.valid[envs[:, None], invalid] = False
        if self.priorities is not None:
            self.priorities.add(envs * self.slots + slot)
            self.priorities.remove(envs[:, None] * self.slots + invalid)
        dones = np.asarray(dones, dtype=bool)
        self.write_slot = np.where(dones, next_slot + 1, next_slot) % self.slots
        self.episode_starts = dones.copy()
        self.high_water = min(self.slots, max(self.high_water, int(next_slot.max()) + 2))

    def start_new_episodes(self) -> None:
        """The envs were reset outside ``add`` (a new or resumed ``learn``): the pending next frames
        become final frames of cut episodes, and the next ``add`` starts fresh episodes."""
        cut = ~self.episode_starts
        self.write_slot[cut] = (self.write_slot[cut] + 1) % self.slots
        self.episode_starts[:] = True

    # ------------------------------------------------------------------ sampling
    def sample_indices(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` (env, slot) pairs uniform over valid transitions: rejection sampling from the written rectangle."""
        if not self.valid.any():
            raise ValueError("cannot sample from an empty replay buffer")
        env_index = np.empty(count, dtype=np.int64)
        slot_index = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            need = count - filled
            draw = max(need * 2, 16)
            envs = rng.integers(0, self.n_envs, size=draw)
            slots = rng.integers(0, self.high_water, size=draw)
            keep = np.flatnonzero(self.valid[envs, slots])[:need]
            env_index[filled:filled + len(keep)] = envs[keep]
            slot_index[filled:filled + len(keep)] = slots[keep]
            filled += len(keep)
        return env_index, slot_index

    def stack_windows(self, env_index: np.ndarray, slot_index: np.ndarray) -> np.ndarray:
        """Frames of slots s - k + 1 .. s + 1 as (n, k + 1, C, H, W): obs = [:, :k], next_obs = [:, 1:].

        One window serves both stacks because the next observation belongs to the same episode
        and its age is one more (capped at k - 1), so both pad from the same first slot.
        """
        return self._frames_before(env_index, slot_index, newest_offset=1)

    def _frames_before(self, env_index: np.ndarray, slot_index: np.ndarray, newest_offset: int) -> np.ndarray:
        """Frames of slots s - k + 1 .. s + newest_offset, padded at the episode's first frame."""
        offsets = np.arange(-(self.stack - 1), newest_offset + 1)
        episode_first = slot_index - self.ages[env_index, slot_index]
        window = np.maximum(slot_index[:, None] + offsets, episode_first[:, None])
        frames = self.frames[env_index[:, None], window % self.slots]
        if self.padding == "zero":
            frames[(slot_index[:, None] + offsets) < episode_first[:, None]] = 0
        return frames

    def stacks_at(self, env_index: np.ndarray, slot_index: np.ndarray) -> np.ndarray:
        """The observations whose newest frames are in slots ``slot_index``, as (n, k * C, H, W)."""
        frames = self._frames_before(env_index, slot_index, newest_offset=0)
        return frames.reshape(len(slot_index), *self.observation_shape)

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int | None = None,
               beta: float = 1.0) -> ReplayBatch:
        """One batch, or ``n_batches`` stacked as (n_batches, batch_size, ...) for one compiled call.

        Uniform, or proportional to the priorities (with importance weights for ``beta``) when prioritized.
        """
        count = batch_size * (n_batches or 1)
        if self.priorities is not None:
            if not self.valid.any():
                raise ValueError("cannot sample from an empty replay buffer")
            flat, weights = self.priorities.sample(rng, batch_size, n_batches or 1, len(self), beta)
            env_index, slot_index = np.divmod(flat, self.slots)
        else:
            env_index, slot_index = self.sample_indices(rng, count)
            weights = np.ones(count, dtype=np.float32)
        actions = self.actions[env_index, slot_index]
        if self.n_steps == 1:
            windows = self.stack_windows(env_index, slot_index)
            shape = (count, *self.observation_shape)
            observations = windows[:, :-1].reshape(shape)
            next_observations = windows[:, 1:].reshape(shape)
            rewards = self.rewards[env_index, slot_index]
            terminations = self.terminations[env_index, slot_index]
            discounts = np.full(count, self.gamma, dtype=np.float32)
        else:
            window = (slot_index[:, None] + np.arange(self.n_steps)) % self.slots
            continues = self.valid[env_index[:, None], window[:, 1:]]
            rewards, lengths = n_step_returns(self.rewards[env_index[:, None], window], continues, self.gamma)
            last = window[np.arange(count), lengths - 1]
            observations = self.stacks_at(env_index, slot_index)
            next_observations = self.stacks_at(env_index, (last + 1) % self.slots)
            terminations = self.terminations[env_index, last]
            discounts = (self.gamma ** lengths).astype(np.float32)
        batch = ReplayBatch(observations, actions, rewards, next_observations, terminations, discounts, weights,
                            env_index * self.slots + slot_index)
        if n_batches is None:
            return batch
        return ReplayBatch(*(a.reshape(n_batches, batch_size, *a.shape[1:]) for a in batch))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for the transitions at ``indices`` (the batch's ``indices``: env * slots + slot)."""
        if self.priorities is None:
            raise ValueError("update_priorities needs a buffer made with prioritized=True")
        self.priorities.update(indices, td_errors)

    # ------------------------------------------------------------------ checkpoints
    _ARRAYS = ("frames", "actions", "rewards", "terminations", "ages", "valid")

    def state_arrays(self) -> dict[str, np.ndarray]:
        used = self.high_water
        arrays = {name: getattr(self, name)[:, :used] for name in self._ARRAYS}
        arrays["write_slot"] = self.write_slot.copy()
        arrays["episode_starts"] = self.episode_starts.copy()
        arrays["meta"] = np.array([self.slots, used, PADDINGS.index(self.padding) if self.padding else -1], dtype=np.int64)
        if self.priorities is not None:
            leaves = self.priorities.tree.leaves.reshape(self.n_envs, self.slots)[:, :used]
            arrays.update(self.priorities.state_arrays(leaves))
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        slots, used, padding = (int(v) for v in arrays["meta"])
        if slots != self.slots or not 0 <= used <= slots:
            raise ValueError(f"saved frame replay buffer has {slots} slots per env ({used} used), expected {self.slots}")
        for name in self._ARRAYS:
            stored = getattr(self, name)
            expected = (self.n_envs, used, *stored.shape[2:])
            if arrays[name].shape != expected:
                raise ValueError(f"saved replay {name} has shape {arrays[name].shape}, expected {expected}")
            stored[:, :used] = arrays[name]
        self.write_slot[:] = arrays["write_slot"]
        self.episode_starts[:] = arrays["episode_starts"]
        self.high_water = used
        self.padding = PADDINGS[padding] if padding >= 0 else None
        if self.priorities is not None:
            indices = (np.arange(self.n_envs)[:, None] * self.slots + np.arange(used)).reshape(-1)
            self.priorities.restore(arrays, indices, self.valid[:, :used].reshape(-1))
