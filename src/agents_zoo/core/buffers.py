"""Rollout and replay buffers shared by the agents.

Termination and truncation are kept apart everywhere: a terminated episode has no future value,
a truncated one (time limit) is bootstrapped from the value of its final observation.

Replay buffers have one interface, :class:`TransitionBuffer`: ``add`` takes one step of every
env with the fields in the order a sample hands them back (a :class:`ReplayBatch`). Two
implement it: :class:`ReplayBuffer` (one row per transition; any observations) and
``agents_zoo.agents.replay.FrameReplayBuffer`` (stacked Atari frames, each frame stored once).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
from gymnasium import spaces

# Prioritized replay has a module of its own; its names stay importable from here.
from agents_zoo.core.prioritized_replay import ProportionalPriorities, SumTree

__all__ = ["compute_gae", "RolloutBatch", "RolloutBuffer", "ReplayBatch", "TransitionBuffer", "n_step_returns",
           "ReplayBuffer", "ProportionalPriorities", "SumTree"]


def _action_shape_dtype(action_space: spaces.Space) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(action_space, spaces.Discrete):
        return (), np.dtype(np.int64)
    return tuple(action_space.shape), np.dtype(np.float32)


def _obs_dtype(observation_space: spaces.Space) -> np.dtype:
    if isinstance(observation_space, spaces.Discrete):
        return np.dtype(np.int64)
    # Images stay uint8 (4x less memory); vectors are float32 for TF.
    return np.dtype(observation_space.dtype) if observation_space.dtype == np.uint8 else np.dtype(np.float32)


def _obs_shape(observation_space: spaces.Space) -> tuple[int, ...]:
    return () if isinstance(observation_space, spaces.Discrete) else tuple(observation_space.shape)


# ----------------------------------------------------------------------------- GAE
def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminations: np.ndarray,
    truncations: np.ndarray,
    last_values: np.ndarray,
    truncation_values: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16) over (T, N) arrays.

    Step t's successor value is ``values[t + 1]`` (``last_values`` after the last step), zero if
    the episode terminated at t, and ``truncation_values[t]`` (the value of the final
    observation) if it was truncated at t. The advantage recursion stops at either end.
    Returns (advantages, returns) with returns = advantages + values (the TD(lambda) target).
    """
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(values, dtype=np.float32)
    next_advantage = np.zeros_like(last_values, dtype=np.float32)
    next_values = last_values
    for t in reversed(range(n_steps)):
        terminated = terminations[t].astype(np.float32)
        ended = np.logical_or(terminations[t], truncations[t]).astype(np.float32)
        successor = np.where(truncations[t], truncation_values[t], next_values)
        delta = rewards[t] + gamma * successor * (1.0 - terminated) - values[t]
        next_advantage = delta + gamma * gae_lambda * (1.0 - ended) * next_advantage
        advantages[t] = next_advantage
        next_values = values[t]
    return advantages, (advantages + values).astype(np.float32)


class RolloutBatch(NamedTuple):
    observations: np.ndarray
    actions: np.ndarray
    old_values: np.ndarray
    old_log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray


class RolloutBuffer:
    """``n_steps`` x ``n_envs`` transitions of the current policy, then GAE over them."""

    def __init__(self, n_steps: int, n_envs: int, observation_space: spaces.Space, action_space: spaces.Space,
                 gamma: float, gae_lambda: float):
        if n_steps < 1 or n_envs < 1:
            raise ValueError(f"a rollout buffer needs n_steps >= 1 and n_envs >= 1, got {n_steps} and {n_envs}")
        self.n_steps, self.n_envs = n_steps, n_envs
        self.gamma, self.gae_lambda = gamma, gae_lambda
        action_shape, action_dtype = _action_shape_dtype(action_space)
        self.observations = np.zeros((n_steps, n_envs, *_obs_shape(observation_space)), dtype=_obs_dtype(observation_space))
        self.actions = np.zeros((n_steps, n_envs, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.log_probs = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.terminations = np.zeros((n_steps, n_envs), dtype=bool)
        self.truncations = np.zeros((n_steps, n_envs), dtype=bool)
        self.truncation_values = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.advantages = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.returns = np.zeros((n_steps, n_envs), dtype=np.float32)
        self.pos = 0

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def reset(self) -> None:
        self.pos = 0
        self.truncation_values[:] = 0.0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, values: np.ndarray,
            log_probs: np.ndarray, terminations: np.ndarray, truncations: np.ndarray) -> None:
        if self.full:
            raise RuntimeError(f"rollout buffer is full ({self.n_steps} steps); call reset() after the update")
        t = self.pos
        self.observations[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.values[t] = values
        self.log_probs[t] = log_probs
        self.terminations[t] = terminations
        self.truncations[t] = truncations
        self.pos += 1

    def set_truncation_values(self, env_indices: np.ndarray, values: np.ndarray) -> None:
        """Values of the final observations of the envs truncated at the last added step."""
        self.truncation_values[self.pos - 1, env_indices] = values

    def compute_returns_and_advantage(self, last_values: np.ndarray) -> None:
        self.advantages[:], self.returns[:] = compute_gae(
            self.rewards, self.values, self.terminations, self.truncations,
            np.asarray(last_values, dtype=np.float32), self.truncation_values, self.gamma, self.gae_lambda,
        )

    def get(self) -> RolloutBatch:
        """All transitions, flattened to (n_steps * n_envs, ...) in time-major order."""
        def flat(array: np.ndarray) -> np.ndarray:
            return array.reshape(self.n_steps * self.n_envs, *array.shape[2:])

        return RolloutBatch(flat(self.observations), flat(self.actions), flat(self.values),
                            flat(self.log_probs), flat(self.advantages), flat(self.returns))


# ----------------------------------------------------------------------------- replay
class ReplayBatch(NamedTuple):
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray  # the n-step return sum_j gamma^j r_{t+j} (the reward itself when n_steps = 1)
    next_observations: np.ndarray  # the observation after the last step summed
    terminations: np.ndarray  # 1.0 only where the last step summed terminated: truncated windows bootstrap
    discounts: np.ndarray  # gamma ** (steps summed): the factor of the bootstrapped value
    weights: np.ndarray  # importance-sampling weights of prioritized replay (ones when sampled uniformly)
    indices: np.ndarray  # where the transitions sit in the buffer, for ``update_priorities``


class TransitionBuffer(Protocol):
    """What DQN (and any off-policy agent) uses of a replay buffer; both buffers implement it.

    ``add`` stores one step of every env (leading axis = envs): ``next_observations`` holds the
    final observation where ``dones`` (an episode ended, terminated or truncated); only
    ``terminations`` stop the bootstrap. ``sample`` returns a :class:`ReplayBatch`, one batch or
    ``n_batches`` stacked; ``update_priorities`` takes its ``indices`` (prioritized buffers).
    """

    n_steps: int
    priorities: ProportionalPriorities | None

    def __len__(self) -> int: ...

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_observations: np.ndarray,
            terminations: np.ndarray, dones: np.ndarray | None = None) -> None: ...

    def start_new_episodes(self) -> None: ...

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int | None = None,
               beta: float = 1.0) -> ReplayBatch: ...

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None: ...

    def state_arrays(self) -> dict[str, np.ndarray]: ...

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...


def n_step_returns(rewards: np.ndarray, continues: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Discounted sums over windows of up to n stored steps, as SB3's ``NStepReplayBuffer`` (SB3 >= 2.7).

    ``rewards`` is (count, n): the rewards of steps t, t + 1, ..., t + n - 1 of each sampled
    transition's own env. ``continues[:, j]`` (count, n - 1) says whether step t + j + 1 follows
    step t + j in the same episode and was stored: False where step t + j terminated, was
    truncated or is the newest one stored. A window stops at its first False, so it never sums
    across episodes. Returns (``sum_{j < L} gamma^j r_{t+j}``, L), L in 1..n the steps summed;
    the target bootstraps from the observation after step t + L - 1 with ``gamma^L`` unless that
    step terminated (Sutton & Barto 2018, eq. 7.1; Hessel et al. 2018, eq. 2).
    """
    inside = np.ones(rewards.shape, dtype=bool)
    inside[:, 1:] = np.logical_and.accumulate(continues, axis=1)
    powers = gamma ** np.arange(rewards.shape[1], dtype=np.float64)
    # np.where, not a product: a reward outside the window never reaches the sum, whatever it is.
    returns = np.where(inside, rewards * powers, 0.0).sum(axis=1)
    return returns.astype(np.float32), inside.sum(axis=1)


class ReplayBuffer:
    """A circular buffer of transitions for vector observations, optionally n-step and prioritized.

    Each ``add`` stores one transition per env at consecutive positions, so env e's next
    transition sits ``n_envs`` positions after its current one (modulo the capacity, whatever it
    is): n-step returns are summed at sample time from single-step transitions, as SB3's
    ``NStepReplayBuffer`` does, without storing anything twice. ``ends`` marks where an env's
    stream cannot be followed: a terminated or truncated episode, or envs reset outside
    ``add`` (``start_new_episodes``); the newest transition of each env is followed by nothing
    stored yet, so its window ends there too and bootstraps from its next observation.

    Image observations should use a frame-deduplicating buffer instead (see the DQN agent),
    which stores each Atari frame once rather than eight times.
    """

    def __init__(self, capacity: int, observation_space: spaces.Space, action_space: spaces.Space, n_envs: int = 1,
                 n_steps: int = 1, gamma: float = 0.99, prioritized: bool = False, alpha: float = 0.6,
                 epsilon: float = 1e-6):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"replay buffer capacity must be a positive int, got {capacity!r}")
        if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
        self.capacity = capacity
        self.n_envs = n_envs
        self.n_steps = n_steps
        self.gamma = float(gamma)
        action_shape, action_dtype = _action_shape_dtype(action_space)
        obs_shape, obs_dtype = _obs_shape(observation_space), _obs_dtype(observation_space)
        self.observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((capacity,), dtype=np.float32)
        self.terminations = np.zeros((capacity,), dtype=np.float32)
        self.ends = np.zeros((capacity,), dtype=bool)  # the env's stream does not continue after this transition
        self.priorities = ProportionalPriorities(capacity, alpha, epsilon) if prioritized else None
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_observations: np.ndarray,
            terminations: np.ndarray, dones: np.ndarray | None = None) -> None:
        """Add one transition per env (leading axis = envs), as :meth:`TransitionBuffer.add`.
        ``dones`` marks episodes that ended (terminated or truncated; ``next_observations`` is
        then the final observation); without it no transition is followed by the next one,
        which only 1-step returns allow."""
        n = len(rewards)
        if n != self.n_envs:
            raise ValueError(f"expected one transition per env ({self.n_envs}), got {n}")
        if dones is None and self.n_steps > 1:
            raise ValueError(f"n_steps={self.n_steps} needs dones (terminated or truncated) to stop at episode ends")
        index = (self.pos + np.arange(n)) % self.capacity
        self.observations[index] = observations
        self.next_observations[index] = next_observations
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.terminations[index] = terminations
        self.ends[index] = True if dones is None else np.asarray(dones, dtype=bool)
        if self.priorities is not None:
            self.priorities.add(index)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def start_new_episodes(self) -> None:
        """The envs were reset outside ``add`` (a new or resumed ``learn``): the newest transition
        of each env ends its stream (it bootstraps from its own next observation)."""
        if self.size:
            self.ends[(self.pos - self.n_envs + np.arange(self.n_envs)) % self.capacity] = True

    def sample_indices(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=count)

    def sample(self, rng: np.random.Generator, batch_size: int, n_batches: int | None = None,
               beta: float = 1.0) -> ReplayBatch:
        """One batch, or ``n_batches`` stacked as (n_batches, batch_size, ...) for one compiled call.

        Uniform, or proportional to the priorities (with importance weights for ``beta``) when prioritized.
        """
        count = batch_size * (n_batches or 1)
        if self.priorities is not None:
            if self.size == 0:
                raise ValueError("cannot sample from an empty replay buffer")
            idx, weights = self.priorities.sample(rng, batch_size, n_batches or 1, self.size, beta)
        else:
            idx, weights = self.sample_indices(rng, count), np.ones(count, dtype=np.float32)
        batch = self._gather(idx, weights)
        if n_batches is None:
            return batch
        return ReplayBatch(*(a.reshape(n_batches, batch_size, *a.shape[1:]) for a in batch))

    def _gather(self, idx: np.ndarray, weights: np.ndarray) -> ReplayBatch:
        if self.n_steps == 1:
            last, rewards = idx, self.rewards[idx]
            discounts = np.full(len(idx), self.gamma, dtype=np.float32)
        else:
            steps = np.arange(self.n_steps)
            window = (idx[:, None] + self.n_envs * steps) % self.capacity  # this env's next transitions
            written_after = (self.pos - 1 - idx) % self.capacity  # transitions stored after idx (over all envs)
            stored = written_after[:, None] >= self.n_envs * steps[1:]
            continues = stored & ~self.ends[window[:, :-1]]
            rewards, lengths = n_step_returns(self.rewards[window], continues, self.gamma)
            last = window[np.arange(len(idx)), lengths - 1]
            discounts = (self.gamma ** lengths).astype(np.float32)
        return ReplayBatch(self.observations[idx], self.actions[idx], rewards, self.next_observations[last],
                           self.terminations[last], discounts, weights, idx)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        if self.priorities is None:
            raise ValueError("update_priorities needs a buffer made with prioritized=True")
        self.priorities.update(indices, td_errors)

    @property
    def nbytes(self) -> int:
        arrays = (self.observations, self.next_observations, self.actions, self.rewards, self.terminations, self.ends)
        return sum(a.nbytes for a in arrays) + (self.priorities.tree.nodes.nbytes if self.priorities else 0)

    @property
    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    # ------------------------------------------------------------------ checkpoints
    _ARRAYS = ("observations", "next_observations", "actions", "rewards", "terminations")

    def state_arrays(self) -> dict[str, np.ndarray]:
        n = self.size
        arrays = {name: getattr(self, name)[:n] for name in self._ARRAYS}
        arrays["ends"] = self.ends[:n]
        arrays["position"] = np.array([self.pos, self.size], dtype=np.int64)
        arrays["layout"] = np.array([self.n_envs], dtype=np.int64)
        if self.priorities is not None:
            arrays.update(self.priorities.state_arrays(self.priorities.tree.leaves[:n]))
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore ``state_arrays``. Files saved before n-step returns hold no ``ends``, and a buffer
        saved with another number of envs interleaves its streams differently: there every loaded
        transition ends its stream (1-step targets, which is what it was stored for)."""
        pos, size = (int(v) for v in arrays["position"])
        if not 0 <= size <= self.capacity or not 0 <= pos < self.capacity:
            raise ValueError(f"saved replay buffer position {pos}/{size} does not fit capacity {self.capacity}")
        for name in self._ARRAYS:
            stored = getattr(self, name)
            if arrays[name].shape[1:] != stored.shape[1:] or len(arrays[name]) != size:
                raise ValueError(f"saved replay {name} has shape {arrays[name].shape}, expected ({size}, *{stored.shape[1:]})")
            stored[:size] = arrays[name]
        same_layout = "ends" in arrays and "layout" in arrays and int(arrays["layout"][0]) == self.n_envs
        if same_layout and arrays["ends"].shape != (size,):
            raise ValueError(f"saved replay ends has shape {arrays['ends'].shape}, expected ({size},)")
        self.ends[:size] = arrays["ends"] if same_layout else True
        self.pos, self.size = pos, size
        if self.priorities is not None:
            self.priorities.restore(arrays, np.arange(size), np.ones(size, dtype=bool))
