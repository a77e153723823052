"""Tabular Q-learning (Watkins 1989; Sutton & Barto, *Reinforcement Learning: An Introduction*,
2nd ed., section 6.5) for discrete observation and action spaces.

    import agents_zoo
    agent = agents_zoo.make("qlearning", "FrozenLake-v1", seed=0)
    agent.learn(30_000)
    print(agent.evaluate(1000).mean)     # 0.741: the success rate of the greedy policy
    agent.save("frozenlake.zip")
    agent = agents_zoo.load("frozenlake.zip")
    action, _ = agent.predict(0, deterministic=True)

or ``agents-zoo train qlearning Taxi-v3 --steps 100000 --save taxi.zip`` then
``agents-zoo evaluate taxi.zip --episodes 1000`` (gymnasium 1.x names them ``Taxi-v4``, same
dynamics, and ``CliffWalking-v1``).

The update after each step ``(s, a, r, s')`` (Sutton & Barto, eq. 6.8)::

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))

with no bootstrap when the episode *terminated* in ``s'`` (the target is ``r``) and the full
bootstrap when it was only *truncated* by a time limit (``s'`` is then the episode's last
observation, not the first of the next one). Actions are epsilon-greedy: epsilon decays
linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over the first
``exploration_fraction`` of training, then stays flat (SB3's DQN schedule and names). Greedy
ties go to the lowest action index, as ``numpy.argmax``; ``predict(deterministic=False)`` is
epsilon-greedy with the current epsilon, as SB3's DQN.

The step size: ``learning_rate_schedule="linear"`` (the default) anneals ``alpha =
learning_rate * progress_remaining`` from 0.5 towards 0 over training (SB3's progress, RL-Zoo's
``lin_0.5``); ``"constant"`` keeps ``alpha = learning_rate``. Annealing is what makes these envs
reliable: early on a large step propagates values fast (Taxi's sparse +20 must travel back over
~12 steps), late a small one averages slippery FrozenLake's noisy targets, so the greedy policy
settles instead of flipping between near-equal actions. Measured on FrozenLake (the greedy
policy's exact success probability, seeds 0-9): a constant 0.1 leaves one seed in ten at 0.17
after 30k steps and one at 0.55 after 100k; a constant 0.5 leaves six or seven in ten between
0.18 and 0.73 at either budget; a per-pair ``1 / n(s, a) ** 0.8`` rate (Even-Dar & Mansour 2003)
stays at 0.45-0.73 after 100k steps (early, immature targets keep their weight); linear from 0.5
finds the gamma = 0.99 optimal policy (0.7402) on all ten by 30k steps.

Budgets (the defaults; gymnasium 1.4; ``agent.evaluate(1000)``: 1000 greedy episodes; "exact"
is the greedy policy's value computed from the env's transition table, free of evaluation
noise). Seeds 0, 1, 2, 3, 4:

=================  =========  ======================================  ===================================
env                steps      evaluate(1000).mean                     exact
=================  =========  ======================================  ===================================
FrozenLake-v1      30,000     0.741, 0.723, 0.730, 0.720, 0.734       0.7402 each (best possible within
(slippery, 4x4)                                                       its 100 steps: 0.7442)
Taxi-v3 / v4       100,000    8.029, 7.912, 8.000, 7.906, 7.792       7.923, 7.923, 7.910, 7.903, 7.897
                                                                      (optimum 7.930)
CliffWalking-v1    10,000     -13 each (the optimal path)
=================  =========  ======================================  ===================================

Less does not hold up: FrozenLake at 20k steps left one seed of ten at 0.652; Taxi at 80k
steps left two of ten at 7.60 exact (an evaluation can then fall under 7.5), at 60k most are
below 4. Training takes ~0.3 s (FrozenLake) and ~1.5 s (Taxi) on one loaded core.

Speed: the loop is plain Python, no TensorFlow: the table is updated as a list of Python lists
(their indexing and ``max`` beat NumPy scalar operations ~2x) and written back to the
``q_table`` array when ``learn`` returns. It steps each env of the ``SyncVectorEnv`` that
``BaseAgent`` builds directly (``env.step``/``env.reset`` of ``vec_env.envs``) and resets an env
as soon as its episode ends, which skips the vector env's batching (~3x faster for one env) and
does not depend on gymnasium's autoreset mode. Measured: 2.7 us of agent work per step (365k
steps/s with a no-op env); FrozenLake ~85k steps/s where its own ``env.step`` alone runs
~140k/s, Taxi ~63k/s (env alone ~88k/s): the env is the bottleneck. ``n_envs > 1`` works (the
envs are stepped one after the other and update one table) but buys no speed, and the budgets
above are for ``n_envs=1`` (FrozenLake with 4 envs and 30k steps left one seed of three at 0.60).
Other vector envs (``AsyncVectorEnv``, vector wrappers) are refused with a message.

Checkpoints (``learn(checkpoint_every=...)``) hold the Q-table, epsilon, the step count, the
RNG state and (through ``BaseAgent``) the envs' episodes where ``core.env_state`` can save them,
so a resumed run is bitwise identical to an uninterrupted one; where it cannot (gymnasium's
toy-text envs keep their transition table ``P`` as a dict), the resumed run continues the table,
RNG and schedules exactly but starts fresh episodes.

Environments without a time limit (``CliffWalking-v1`` is registered without one) never end an
episode under a greedy policy that walks into a wall: evaluate those with a limit, e.g.
``agent.evaluate(10, env=lambda: gym.make("CliffWalking-v1", max_episode_steps=100))``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import SyncVectorEnv, VectorEnv

from agents_zoo.core.base import BaseAgent
from agents_zoo.core.callbacks import BaseCallback
from agents_zoo.core.config import AgentConfig, check_choice, check_number, check_probability, field
from agents_zoo.core.envs import check_finite
from agents_zoo.core.spaces import UnsupportedSpaceError

# A table with more entries than this is refused before anything is allocated (also when a saved
# file declares a huge space): 128 MiB as float64, ~0.5 GiB as the Python lists learn() works on.
MAX_TABLE_ENTRIES = 2**24

LEARNING_RATE_SCHEDULES = ("linear", "constant")


@dataclasses.dataclass
class QLearningConfig(AgentConfig):
    """Q-learning settings; the exploration names and the schedule semantics are SB3's."""

    # Annealed from 0.5 (not a constant): large early steps propagate values fast, small late ones
    # average stochastic targets, so FrozenLake and Taxi both settle reliably (module docstring).
    learning_rate: float = field(0.5, doc="step size alpha (at the start of training with the linear schedule)")
    learning_rate_schedule: str = field(
        "linear", doc="linear: learning_rate * progress_remaining (RL-Zoo's lin_<lr>); constant: learning_rate")
    gamma: float = field(0.99, doc="discount factor")
    exploration_fraction: float = field(0.5, doc="fraction of training over which epsilon decays linearly")
    exploration_initial_eps: float = field(1.0, doc="epsilon at the start of training")
    exploration_final_eps: float = field(0.05, doc="epsilon after exploration_fraction of training")
    initial_q_value: float = field(0.0, doc="initial value of every Q(s, a)")

    def validate(self) -> None:
        super().validate()
        check_number(self, "learning_rate", minimum=0.0, maximum=1.0, exclusive_min=True)
        check_choice(self, "learning_rate_schedule", LEARNING_RATE_SCHEDULES)
        check_probability(self, "gamma")
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            check_probability(self, name)
        check_number(self, "initial_q_value")


def linear_schedule(progress_remaining: float, initial: float, final: float, fraction: float) -> float:
    """SB3's ``get_linear_fn``: ``initial`` -> ``final`` over the first ``fraction`` of training, then flat."""
    progress = 1.0 - progress_remaining
    if fraction <= 0.0 or progress > fraction:
        return final
    return initial + progress * (final - initial) / fraction


class QLearning(BaseAgent):
    name = "qlearning"
    config_class = QLearningConfig
    observation_spaces = (spaces.Discrete,)
    action_spaces = (spaces.Discrete,)
    config: QLearningConfig

    def __init__(self, env: Any = None, config: Any = None, **kwargs: Any):
        try:
            super().__init__(env, config, **kwargs)
        except (UnsupportedSpaceError, ValueError, TypeError) as exc:
            vec_env = getattr(self, "env", None)
            if vec_env is not None and not isinstance(env, (gym.Env, VectorEnv)):
                vec_env.close()  # built from an id or a factory here: nobody else holds it
            space = vec_env.single_observation_space if vec_env is not None else kwargs.get("observation_space")
            if isinstance(exc, UnsupportedSpaceError) and space is not None and not isinstance(space, spaces.Discrete):
                raise UnsupportedSpaceError(
                    f"qlearning needs a Discrete observation space (one table row per state), got {space}; "
                    "use 'dqn' for continuous observations") from None
            raise

    # ------------------------------------------------------------------ setup
    def _check_training_env(self, vec: VectorEnv) -> None:
        if not isinstance(vec, SyncVectorEnv):
            raise TypeError(f"qlearning steps the envs of a gymnasium SyncVectorEnv itself, got a "
                            f"{type(vec).__name__}; pass an env id, a gym.Env or a SyncVectorEnv")

    def _setup(self) -> None:
        self.n_states = int(self.observation_space.n)
        self.n_actions = int(self.action_space.n)
        self._state_start = int(self.observation_space.start)
        self._action_start = int(self.action_space.start)
        if self.n_states * self.n_actions > MAX_TABLE_ENTRIES:
            raise ValueError(f"a Q-table of {self.n_states} states x {self.n_actions} actions exceeds "
                             f"{MAX_TABLE_ENTRIES} entries; tabular Q-learning is for small discrete spaces")
        if self.env is not None:
            self._check_training_env(self.env)
        # np.zeros takes untouched (calloc'ed) pages: a table that a file declares but does not
        # hold costs no memory before load() refuses it.
        self._q_table = np.zeros((self.n_states, self.n_actions), dtype=np.float64)
        if self.config.initial_q_value:
            self._q_table.fill(self.config.initial_q_value)
        self._q_rows: list[list[float]] | None = None  # the table as Python lists while learn() runs
        self.exploration_rate = self.config.exploration_initial_eps

    @property
    def q_table(self) -> np.ndarray:
        """The Q-table, shape ``(n_states, n_actions)``, float64; row ``s - observation_space.start``.

        ``learn`` updates a copy held as Python lists (they index and compare about twice as
        fast as NumPy scalars) and writes it back here when it returns; read during
        ``learn`` (from a callback), this array is refreshed from the lists first, and writes
        into it are not seen by the running loop.
        """
        if self._q_rows is not None:
            self._q_table[...] = self._q_rows
        return self._q_table

    @q_table.setter
    def q_table(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != self._q_table.shape:
            raise ValueError(f"the Q-table has shape {self._q_table.shape}, got {value.shape}")
        if self._q_rows is not None:
            raise RuntimeError("the Q-table cannot be replaced while learn() runs")
        self._q_table = value.copy()

    def _state_indices(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations)
        indices = obs.astype(np.int64) - self._state_start
        if (not np.issubdtype(obs.dtype, np.integer) and not np.array_equal(obs, indices + self._state_start)) \
                or indices.min(initial=0) < 0 or indices.max(initial=0) >= self.n_states:
            raise ValueError(f"observations {obs.tolist()} are not all states of {self.observation_space}")
        return indices

    # ------------------------------------------------------------------ acting
    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        actions = self.q_table[self._state_indices(observations)].argmax(axis=1)
        if not deterministic:  # as DQN.predict: epsilon-greedy with the current epsilon
            n = len(actions)
            explore = self.rng.random(n) < self.exploration_rate
            actions = np.where(explore, self.rng.integers(0, self.n_actions, size=n), actions)
        return actions.astype(np.int64) + self._action_start

    # ------------------------------------------------------------------ training loop
    def _learn(self, callback: BaseCallback, log_interval: int) -> None:
        assert self._last_obs is not None and self.env is not None
        self._q_rows = self._q_table.tolist()
        try:
            self._run_loop(self._q_rows, callback, log_interval)
        finally:
            self._q_table[...] = self._q_rows
            self._q_rows = None

    def _run_loop(self, q: list[list[float]], callback: BaseCallback, log_interval: int) -> None:
        cfg = self.config
        envs = self.env.envs
        n_envs, n_states, n_actions = self.n_envs, self.n_states, self.n_actions
        state_start, action_start = self._state_start, self._action_start
        gamma, alpha, linear_alpha = cfg.gamma, cfg.learning_rate, cfg.learning_rate_schedule == "linear"
        eps_initial, eps_final, eps_fraction = (cfg.exploration_initial_eps, cfg.exploration_final_eps,
                                                cfg.exploration_fraction)
        detect_nonfinite = cfg.detect_nonfinite
        random = self.rng.random
        total = self._total_timesteps
        # Updated in place each step, so a checkpoint written by on_step() sees the current episodes.
        last_obs, running_returns, running_lengths = self._last_obs, self._running_returns, self._running_lengths
        episode_returns, episode_lengths = self._episode_returns, self._episode_lengths
        states = [int(s) for s in self._state_indices(last_obs)]
        log_every = 1000 * log_interval if log_interval else 0
        next_log = self.num_timesteps + log_every
        while self.num_timesteps < total:
            progress_remaining = 1.0 - self.num_timesteps / total
            epsilon = linear_schedule(progress_remaining, eps_initial, eps_final, eps_fraction)
            self.exploration_rate = epsilon
            if linear_alpha:
                alpha = cfg.learning_rate * progress_remaining
            for i in range(n_envs):
                state = states[i]
                row = q[state]
                if random() < epsilon:
                    action = int(random() * n_actions)
                else:
                    action = row.index(max(row))  # the first maximum, as numpy.argmax
                obs, reward, terminated, truncated, _ = envs[i].step(action + action_start)
                reward = float(reward)
                if detect_nonfinite and not math.isfinite(reward):
                    check_finite("reward", np.array([reward]), self.num_timesteps + n_envs)
                next_state = int(obs) - state_start
                if not 0 <= next_state < n_states:
                    raise ValueError(f"the env returned observation {obs!r}, not a state of {self.observation_space}")
                # Sutton & Barto eq. 6.8: no bootstrap when the episode terminated in next_state; the
                # full bootstrap when it was truncated (next_state is still the episode's last observation).
                target = reward if terminated else reward + gamma * max(q[next_state])
                row[action] += alpha * (target - row[action])
                running_returns[i] += reward
                running_lengths[i] += 1
                if terminated or truncated:
                    episode_returns.append(float(running_returns[i]))
                    episode_lengths.append(int(running_lengths[i]))
                    running_returns[i] = 0.0
                    running_lengths[i] = 0
                    obs, _ = envs[i].reset()
                    next_state = int(obs) - state_start
                states[i] = next_state
                last_obs[i] = obs
            self.num_timesteps += n_envs
            if not callback.on_step():
                break
            if log_every and self.num_timesteps >= next_log:
                next_log = self.num_timesteps + log_every
                self._record_rollout_stats()
                self.logger.record("rollout/exploration_rate", epsilon)
                self.logger.record("train/learning_rate", alpha)
                self.logger.dump(self.num_timesteps)

    # ------------------------------------------------------------------ save / load
    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        return {"qlearning/q_table": self.q_table.copy(),
                "qlearning/exploration_rate": np.array([self.exploration_rate], np.float64)}

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        shape = (self.n_states, self.n_actions)
        q_table = arrays["qlearning/q_table"]
        if q_table.shape != shape or q_table.dtype.kind != "f" or not np.all(np.isfinite(q_table)):
            raise ValueError(f"qlearning/q_table must be a finite float array of shape {shape}, "
                             f"got {q_table.dtype} {q_table.shape}")
        rate = arrays["qlearning/exploration_rate"]
        if rate.shape != (1,) or not 0.0 <= float(rate[0]) <= 1.0:
            raise ValueError(f"qlearning/exploration_rate must hold one probability, got {rate.tolist()}")
        self._q_table = q_table.astype(np.float64)
        self.exploration_rate = float(rate[0])
