"""DQN (Mnih et al. 2015, "Human-level control through deep RL") with Double DQN and a dueling head.

Over ~400 lines because it reads top to bottom as one algorithm: config, loss, update, acting,
and the target-update bookkeeping that matches SB3 step for step.

    agent = DQN("CartPole-v1", learning_rate=2.3e-3, ...).learn(50_000)

Hyperparameter names and defaults are SB3's (2.9.2; n_steps is SB3 >= 2.7's). SB3's DQN is vanilla: the TD target is
``r + gamma * max_a Q_target(s', a)``, no dueling head. Here Double DQN (van Hasselt et al.
2016: the online network picks ``a' = argmax Q_online(s')``, the target network evaluates it)
is on by default (``double_q=True``; ``double_q=False`` is SB3's target) and the dueling head
(Wang et al. 2016) is an option. Two more Rainbow parts (Hessel et al. 2018) are options, off
by default: n-step returns (``n_steps``, SB3 >= 2.7's name and semantics: up to n rewards summed
at sample time in the replay buffers, stopping at a termination, without bootstrap, or at a
truncation, bootstrapping from the final observation with ``gamma^L``) and proportional
prioritized replay (``prioritized_replay``, Schaul et al. 2016: a sum tree in the buffers,
importance weights on the loss, priorities from |TD error| after every gradient step).
Everything else follows SB3: Huber (smooth L1) loss, Adam,
gradient-norm clipping at ``max_grad_norm``, a linear epsilon schedule over
``exploration_fraction`` of training, ``train_freq`` vector-env steps between training phases of
``gradient_steps`` updates once more than ``learning_starts`` steps were taken, and a target update
(Polyak with ``tau``, a hard copy at ``tau=1``) every ``target_update_interval // n_envs``
vector-env steps, counted over the whole life of the agent as SB3's ``_n_calls``.

Speed on CPU, where one TF call costs ~200 us:
* a training phase is ONE compiled call: all ``gradient_steps`` batches are sampled in NumPy
  up front and the updates loop inside the graph (``tf.range``). SB3 only updates the target
  network between env steps, so the target is constant during a phase; the target updates due
  during the rollout are compounded into one Polyak mix at the start of the next call
  (k updates with ``tau`` = one with ``1 - (1 - tau)^k``), which is exact for ``tau=1``.
  With prioritized replay each batch must be drawn after the previous step's new priorities,
  so a phase is one compiled call per gradient step;
* epsilon is drawn per env in NumPy first, so random actions cost no TF call; greedy actions
  of MLP policies run in NumPy (``core.policies.NumpyForward``) on the weights read after each
  training phase (an output of its compiled call); CNN policies act for all envs in one compiled call,
  and the step after a training phase takes the greedy actions that phase's call computed on the
  new weights (one acting call fewer per phase, made while the weights are in cache);
* stacked Atari frames go to :class:`~agents_zoo.agents.replay.FrameReplayBuffer` (each frame
  stored once, ~7 KB per transition instead of SB3's ~56 KB).

On small shared machines run with ``OMP_NUM_THREADS=1`` (or ``OPENBLAS_NUM_THREADS=1``): NumPy's
OpenBLAS threads otherwise spin around the tiny acting matmuls (CartPole steps measured 3x
slower on 2 loaded cores). ``agents-zoo bench --config dqn-cartpole-10`` compares with SB3
(results in ``benchmarks/results/dqn-cartpole-10``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.agents.replay import FrameReplayBuffer
from agents_zoo.core import networks, saved_variables
from agents_zoo.core.base import BaseAgent
from agents_zoo.core.buffers import ReplayBuffer, TransitionBuffer
from agents_zoo.core.callbacks import BaseCallback
from agents_zoo.core.config import (AgentConfig, check_bool, check_choice, check_int, check_number, check_positive,
                                    check_probability, field)
from agents_zoo.core.optimizers import TorchStyleOptimizer
from agents_zoo.core.policies import NumpyForward, QNetwork
from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.spaces import image_is_channel_first, is_image_space


# torch.optim.Adam's epsilon (SB3 uses the torch defaults); Keras defaults to 1e-7.
ADAM_EPSILON = 1e-8


@dataclasses.dataclass
class DQNConfig(AgentConfig):
    """DQN settings; names and defaults are SB3 2.9.2's unless noted."""

    activation: str = field("relu", doc="activation of the MLP hidden layers (SB3's DQN uses ReLU)")
    learning_rate: float = field(1e-4, doc="Adam learning rate")
    buffer_size: int = field(1_000_000, doc="replay buffer capacity in transitions (over all envs)")
    learning_starts: int = field(100, doc="env steps of uniformly random actions before training starts "
                                          "(SB3 2.9.2's default; 2.2.1 had 50,000)")
    batch_size: int = field(32, doc="transitions per gradient step")
    tau: float = field(1.0, doc="target update coefficient: 1 = hard copy, < 1 = Polyak averaging")
    gamma: float = field(0.99, doc="discount factor")
    train_freq: int = field(4, doc="vector-env steps between training phases")
    gradient_steps: int = field(1, doc="gradient steps per training phase (-1: as many as env steps collected)")
    target_update_interval: int = field(10_000, doc="env steps between target network updates")
    exploration_fraction: float = field(0.1, doc="fraction of training over which epsilon decays linearly")
    exploration_initial_eps: float = field(1.0, doc="epsilon at the start of training")
    exploration_final_eps: float = field(0.05, doc="epsilon after exploration_fraction of training")
    max_grad_norm: float = field(10.0, doc="clip the global gradient norm to this value")
    double_q: bool = field(False, doc="Double DQN target (van Hasselt et al. 2016); False (default) = SB3's DQN")
    dueling: bool = field(False, doc="dueling head Q = V + A - mean(A) (Wang et al. 2016)")
    cnn_hidden_sizes: tuple[int, ...] = field((), doc="hidden layers after the Nature CNN's 512 features (SB3: none)")
    # Defaults by a 10-seed measurement (benchmarks/results/dqn-defaults and dqn-cartpole-10, RL-Zoo's
    # CartPole-v1 settings): 475 reached on 9/10 seeds with vanilla targets and torch init, 5/10
    # Double + torch init, 4-5/10 with orthogonal init; SB3 2.9.2 7/10.
    network_init: str = field("torch", doc="torch: torch.nn's default U(+-1/sqrt(fan_in)) weights and biases (SB3's "
                                           "DQN init), or orthogonal (gain sqrt(2) hidden, 1 heads)")
    deduplicate_frames: bool = field(True, doc="store each frame of stacked uint8 image observations once")
    frame_channels: int = field(1, doc="channels per stacked frame for deduplicate_frames (1 gray, 3 RGB)")
    n_steps: int = field(1, doc="n-step returns (SB3 >= 2.7's n_steps): sum up to n rewards, then bootstrap "
                                "with gamma^n (fewer at an episode end); 1 = off")
    prioritized_replay: bool = field(False, doc="proportional prioritized replay (Schaul et al. 2016); "
                                                "False = uniform, as SB3")
    prioritized_replay_alpha: float = field(0.6, doc="priority exponent: P(i) ~ (|TD error| + eps)^alpha; "
                                                     "0 = uniform")
    prioritized_replay_beta0: float = field(0.4, doc="importance-sampling exponent at the start, annealed linearly to 1")
    prioritized_replay_eps: float = field(1e-6, doc="added to |TD error| so no transition gets priority 0")

    def validate(self) -> None:
        super().validate()
        check_positive(self, "learning_rate")
        check_int(self, "buffer_size", minimum=1)
        check_int(self, "learning_starts", minimum=0)
        check_int(self, "batch_size", minimum=1)
        check_number(self, "tau", minimum=0.0, maximum=1.0, exclusive_min=True)
        check_probability(self, "gamma")
        check_int(self, "train_freq", minimum=1)
        check_int(self, "gradient_steps", minimum=-1)
        check_int(self, "target_update_interval", minimum=1)
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            check_probability(self, name)
        check_positive(self, "max_grad_norm")
        for name in ("double_q", "dueling", "deduplicate_frames", "prioritized_replay"):
            check_bool(self, name)
        check_choice(self, "network_init", networks.NETWORK_INITS)
        check_int(self, "n_steps", minimum=1)
        check_number(self, "prioritized_replay_alpha", minimum=0.0)
        check_probability(self, "prioritized_replay_beta0")
        check_positive(self, "prioritized_replay_eps")
        sizes = self.cnn_hidden_sizes
        if not isinstance(sizes, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"cnn_hidden_sizes must be a tuple of positive ints, got {sizes!r}")
        check_int(self, "frame_channels", minimum=1)
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                             f"expected batch_size <= buffer_size")


def linear_epsilon(progress_remaining: float, initial: float, final: float, fraction: float) -> float:
    """SB3's ``get_linear_fn``: ``initial`` -> ``final`` over the first ``fraction`` of training, then flat."""
    progress = 1.0 - progress_remaining
    if fraction <= 0.0 or progress > fraction:
        return final
    return initial + progress * (final - initial) / fraction


def td_targets(rewards: Any, terminations: Any, next_q_target: Any, next_q_online: Any, discounts: Any,
               double_q: bool) -> tf.Tensor:
    """``r + discount * (1 - terminated) * Q_target(s', a')``, with ``a' = argmax_a Q_online(s', a)``
    (Double DQN, van Hasselt et al. 2016, eq. 4) or ``argmax_a Q_target(s', a)`` (Mnih et al. 2015).

    ``discounts`` is gamma, or per sample ``gamma^L`` for n-step returns (``r`` then sums L
    rewards and s' is the observation L steps later; SB3's ``replay_data.discounts``).
    Only terminations cut the bootstrap; a truncated transition's s' is its final observation.
    """
    if double_q:
        next_actions = tf.argmax(next_q_online, axis=1, output_type=tf.int32)
        next_q = tf.gather(next_q_target, next_actions, axis=1, batch_dims=1)
    else:
        next_q = tf.reduce_max(next_q_target, axis=1)
    return rewards + discounts * (1.0 - terminations) * next_q


def huber(errors: tf.Tensor, weights: tf.Tensor | None = None) -> tf.Tensor:
    """Mean Huber loss with delta 1 (torch's smooth_l1_loss; the Nature paper's error clipping).

    ``weights`` scale each sample's loss: prioritized replay's importance-sampling weights
    (Schaul et al. 2016, Algorithm 1, line 12).
    """
    absolute = tf.abs(errors)
    losses = tf.where(absolute < 1.0, 0.5 * tf.square(errors), absolute - 0.5)
    return tf.reduce_mean(losses if weights is None else weights * losses)


class DQN(BaseAgent):
    name = "dqn"
    config_class = DQNConfig
    checkpoint_between_rollouts_only = True  # resume starts a rollout, so save where one starts
    action_spaces = (spaces.Discrete,)
    config: DQNConfig

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.config
        self.n_actions = int(self.action_space.n)
        self.uses_images = is_image_space(self.observation_space)
        hidden = cfg.cnn_hidden_sizes if self.uses_images else cfg.policy_hidden_sizes
        self.q_net, self.q_net_target = (
            QNetwork(self.observation_space, self.n_actions, hidden, cfg.activation, cfg.dueling, name=name,
                     compute_dtype=cfg.compute_dtype)
            for name in ("q_net", "q_net_target"))
        if cfg.network_init == "torch":  # its own generator: the agent's action stream stays the same
            networks.torch_default_init(self.q_net, np.random.default_rng(derive_seed(self.seed, 21)))
        for target, online in zip(self.q_net_target.variables, self.q_net.variables):
            target.assign(online)
        # Keras' epsilon placement: the rule the published DQN benchmark ran with (core/optimizers.py)
        self.optimizer = TorchStyleOptimizer(self.q_net.trainable_variables, "adam", epsilon=ADAM_EPSILON,
                                             torch_epsilon=False)
        self.exploration_rate = cfg.exploration_initial_eps
        self._n_calls = 0  # vector-env steps over the agent's life (SB3's DQN._n_calls)
        self._pending_target_updates = 0  # target updates due but not applied yet (see module docstring)
        self._n_updates = 0
        self._fresh_reset = False
        # (observations, greedy actions) from the last training phase's graph: see _train
        self._greedy_ahead: tuple[np.ndarray, np.ndarray] | None = None
        self.replay = self._make_replay_buffer() if self.env is not None else None
        # XLA fuses the small ops of an MLP update (~0.45 ms instead of ~0.7 ms per gradient step on
        # one CPU core) but its CPU convolutions are ~10x slower than TF's oneDNN kernels: CNNs skip it.
        self._train_phase = tf.function(self._train_phase_graph, jit_compile=not self.uses_images,
                                        reduce_retracing=True)
        self._prioritized_step = tf.function(self._prioritized_step_graph, jit_compile=not self.uses_images,
                                             reduce_retracing=True)
        self._mix_target = tf.function(self._mix_target_graph)
        if self.uses_images:  # an MLP's acting weights are read below (NumpyForward), not copied
            for network in (self.q_net, self.q_net_target):
                network.acting_weights()  # the CNNs' acting copies start from the initial weights
        greedy = tf.function(self._greedy_actions)
        # A concrete function skips tf.function's dispatch (~0.2 ms of a ~1.2 ms CNN acting call).
        obs_spec = tf.TensorSpec([None, *self.observation_space.shape], self.observation_space.dtype)
        self._greedy_graph = greedy.get_concrete_function(obs_spec) if self.uses_images else greedy
        self._numpy_q_net = None if self.uses_images else NumpyForward(self.q_net, self.observation_space)

    def _make_replay_buffer(self) -> TransitionBuffer:
        cfg = self.config
        space = self.observation_space
        # n-step returns and priorities live in the buffers, which hand out batches with the
        # n-step sums, the bootstrap discounts gamma^L and the importance weights.
        options = dict(n_steps=cfg.n_steps, gamma=cfg.gamma, prioritized=cfg.prioritized_replay,
                       alpha=cfg.prioritized_replay_alpha, epsilon=cfg.prioritized_replay_eps)
        if self.uses_images and cfg.deduplicate_frames and image_is_channel_first(space):
            if space.shape[0] % cfg.frame_channels:
                raise ValueError(f"frame_channels={cfg.frame_channels} does not divide the {space.shape[0]} channels "
                                 f"of observations {space.shape}; expected a divisor")
            return FrameReplayBuffer(cfg.buffer_size, self.n_envs, space.shape, cfg.frame_channels, **options)
        return ReplayBuffer(cfg.buffer_size, space, self.action_space, n_envs=self.n_envs, **options)

    def _refresh_numpy_q_net(self, flat_weights: tf.Tensor) -> None:
        if self._numpy_q_net is not None:
            self._numpy_q_net.load(flat_weights.numpy())

    # ------------------------------------------------------------------ compiled graphs
    def _mix_target_graph(self, mix: tf.Tensor) -> None:
        # SB3's polyak_update: target = (1 - tau) * target + tau * online (exact copy at tau = 1).
        for target, online in zip(self.q_net_target.variables, self.q_net.variables):
            target.assign(target * (1.0 - mix) + online * mix)
        self.q_net_target.acting_weights()  # the target's values are read through its acting copies

    def _mix_target_if_due(self, mix: tf.Tensor) -> None:
        """``_mix_target_graph`` when ``mix`` > 0: most phases have no update due, and a mix of 0
        would still read and write every weight (an Atari phase spent ~1/10 of its time on it)."""
        tf.cond(mix > 0.0, lambda: self._mix_target_graph(mix) or tf.constant(True), lambda: tf.constant(False))

    def _train_phase_graph(self, target_mix, acting_observations, observations, actions, rewards, next_observations,
                           terminations, discounts):
        """Apply the pending target mix, then one gradient step per leading index of the batches;
        returns (mean loss, mean Q, the acting weights, the greedy actions for ``acting_observations``
        on the updated weights; empty where they are None)."""
        self._mix_target_if_due(target_mix)
        if actions.shape[0] == 1:  # Atari's usual phase: no while loop, so grappler can fuse across the step
            # The last phase (or setup, or a load) left the acting copies fresh: the step may read them.
            loss, q_mean, _ = self._gradient_step(observations[0], actions[0], rewards[0], next_observations[0],
                                                  terminations[0], discounts[0], copies_fresh=True)
            return loss, q_mean, self.q_net.acting_weights(), self._greedy_ahead_graph(acting_observations)
        loss_sum = tf.constant(0.0)
        q_sum = tf.constant(0.0)
        for step in tf.range(tf.shape(actions)[0]):
            loss, q_mean, _ = self._gradient_step(observations[step], actions[step], rewards[step],
                                                  next_observations[step], terminations[step], discounts[step])
            loss_sum += loss
            q_sum += q_mean
        count = tf.cast(tf.shape(actions)[0], tf.float32)
        return loss_sum / count, q_sum / count, self.q_net.acting_weights(), self._greedy_ahead_graph(acting_observations)

    def _greedy_actions(self, observations: tf.Tensor) -> tf.Tensor:
        return tf.argmax(self.q_net.acting_q_values(observations), axis=1, output_type=tf.int32)

    def _greedy_ahead_graph(self, observations: tf.Tensor | None) -> tf.Tensor:
        return tf.zeros([0], tf.int32) if observations is None else self._greedy_actions(observations)

    def _prioritized_step_graph(self, target_mix, observations, actions, rewards, next_observations, terminations,
                                discounts, weights):
        """One importance-weighted gradient step; returns (loss, mean Q, |TD errors|) for the new priorities."""
        self._mix_target_if_due(target_mix)
        loss, q_mean, errors = self._gradient_step(observations, actions, rewards, next_observations, terminations,
                                                   discounts, weights)
        return loss, q_mean, tf.abs(errors)

    def _gradient_step(self, observations, actions, rewards, next_observations, terminations, discounts,
                       weights=None, copies_fresh=False):
        cfg = self.config
        variables = self.q_net.trainable_variables
        next_q_target = self.q_net_target.acting_q_values(next_observations)
        next_q_online = self.q_net(next_observations) if cfg.double_q else next_q_target
        targets = tf.stop_gradient(td_targets(rewards, terminations, next_q_target, next_q_online, discounts,
                                              cfg.double_q))
        with tf.GradientTape() as tape:
            q_values = self.q_net.call_on_fresh_copies(observations) if copies_fresh else self.q_net(observations)
            chosen = tf.gather(q_values, tf.cast(actions, tf.int32), axis=1, batch_dims=1)
            errors = chosen - targets
            loss = huber(errors, weights)
        gradients = tape.gradient(loss, variables)
        gradients, _ = tf.clip_by_global_norm(gradients, cfg.max_grad_norm)
        self.optimizer.apply(gradients, variables, cfg.learning_rate)
        return loss, tf.reduce_mean(chosen), errors

    # ------------------------------------------------------------------ acting
    def _greedy(self, observations: np.ndarray) -> np.ndarray:
        ahead, self._greedy_ahead = self._greedy_ahead, None
        if ahead is not None and ahead[0] is observations:
            return ahead[1]
        if self._numpy_q_net is not None:
            return self._numpy_q_net(observations).argmax(axis=1)
        return self._greedy_graph(tf.constant(np.asarray(observations, dtype=self.observation_space.dtype))).numpy()

    def _epsilon_greedy(self, observations: np.ndarray, epsilon: float) -> np.ndarray:
        # Epsilon is drawn per env in NumPy first: all-random steps never pay for a network call.
        n = len(observations)
        explore = self.rng.random(n) < epsilon
        actions = self.rng.integers(0, self.n_actions, size=n)
        if not explore.all():
            actions = np.where(explore, actions, self._greedy(observations))
        return actions

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        # As SB3's DQN.predict: stochastic prediction is epsilon-greedy with the current epsilon.
        indices = self._greedy(observations) if deterministic else self._epsilon_greedy(observations, self.exploration_rate)
        return indices.astype(np.int64) + int(self.action_space.start)

    # ------------------------------------------------------------------ training loop
    @property
    def steps_per_iteration(self) -> int:
        return self.config.train_freq * self.n_envs

    def _learn(self, callback: BaseCallback, log_interval: int) -> None:
        cfg = self.config
        assert self._last_obs is not None and self.replay is not None
        if self._fresh_reset:  # the stored streams do not continue into the reset episodes
            self.replay.start_new_episodes()
        self._fresh_reset = False
        target_every = max(cfg.target_update_interval // self.n_envs, 1)
        start = int(self.action_space.start)
        next_log = self.num_timesteps + 1000 * max(log_interval, 1)
        try:
            while self.num_timesteps < self._total_timesteps:
                callback.on_rollout_start()  # the safe point for checkpoints: the last training phase is done
                # One rollout of train_freq vector steps (SB3's collect_rollouts), then one training phase.
                for _ in range(cfg.train_freq):
                    obs = self._last_obs
                    if self.num_timesteps < cfg.learning_starts:
                        actions = self.rng.integers(0, self.n_actions, size=self.n_envs)
                    else:
                        actions = self._epsilon_greedy(obs, self.exploration_rate)
                    next_obs, rewards, terminated, truncated, finals = self._env_step(actions + start)
                    stored_next = next_obs
                    if finals:  # bootstrap truncated episodes from their final observation, not the reset one
                        stored_next = next_obs.copy()
                        for index, final in finals.items():
                            stored_next[index] = final
                    self._store(obs, actions, rewards, stored_next, terminated, np.logical_or(terminated, truncated))
                    self._last_obs = next_obs
                    self._n_calls += 1
                    if self._n_calls % target_every == 0:
                        self._pending_target_updates += 1
                    self.exploration_rate = linear_epsilon(self.progress_remaining, cfg.exploration_initial_eps,
                                                           cfg.exploration_final_eps, cfg.exploration_fraction)
                    if not callback.on_step():
                        return
                callback.on_rollout_end()
                if self.num_timesteps > 0 and self.num_timesteps > cfg.learning_starts:
                    steps = cfg.gradient_steps if cfg.gradient_steps >= 0 else cfg.train_freq * self.n_envs
                    if steps > 0:
                        self._train(steps)
                if log_interval and self.num_timesteps >= next_log:
                    next_log = self.num_timesteps + 1000 * log_interval
                    self._record_rollout_stats()
                    self.logger.record("rollout/exploration_rate", self.exploration_rate)
                    self.logger.dump(self.num_timesteps)
        finally:
            self._greedy_ahead = None  # the weights may change before the next learn
            self._apply_pending_target_updates()

    def _reset_env(self) -> np.ndarray:
        self._fresh_reset = True
        return super()._reset_env()

    def _after_set_env(self) -> None:
        self._greedy_ahead = None  # greedy actions for the old env's observations
        if self.replay is None:  # loaded without an env: nothing to learn from until now
            self.replay = self._make_replay_buffer()

    def _store(self, obs, actions, rewards, next_obs, terminated, dones) -> None:
        self.replay.add(obs, actions, rewards, next_obs, terminated, dones)

    def _target_mix(self) -> float:
        mix = 1.0 - (1.0 - self.config.tau) ** self._pending_target_updates if self._pending_target_updates else 0.0
        self._pending_target_updates = 0
        return mix

    def _apply_pending_target_updates(self) -> None:
        if self._pending_target_updates:
            self._mix_target(tf.constant(self._target_mix(), tf.float32))

    def prioritized_replay_beta(self) -> float:
        """Importance-sampling exponent, annealed linearly from beta0 to 1 over training (Schaul et al.
        2016, sec. 3.4: full correction matters most near convergence, where the updates are unbiased)."""
        beta0 = self.config.prioritized_replay_beta0
        return beta0 + (1.0 - beta0) * (1.0 - self.progress_remaining)

    def _train(self, gradient_steps: int) -> None:
        cfg = self.config
        mix = tf.constant(self._target_mix(), tf.float32)
        if self.replay.priorities is None:
            # Uniform replay: every batch of the phase is drawn up front and trained in one compiled call.
            batch = self.replay.sample(self.rng, cfg.batch_size, gradient_steps)
            # An image network also picks the greedy actions for the observations the next step acts
            # on, in the same call, while the weights it just wrote are in cache: the first acting
            # call after an update otherwise cost ~1.2 ms instead of ~0.3 (Nature CNN, bf16, one
            # core), the weights evicted by the update's ~100 MB of traffic. An MLP acts in NumPy.
            acting = tf.constant(np.asarray(self._last_obs, self.observation_space.dtype)) if self.uses_images else None
            loss, q_mean, flat_weights, greedy = self._train_phase(mix, acting, *(tf.constant(a) for a in batch[:6]))
            if acting is not None:
                self._greedy_ahead = (self._last_obs, greedy.numpy())
        else:
            # Prioritized replay draws each batch from the priorities the previous step left
            # (Schaul et al. 2016, Algorithm 1), so a phase is one compiled call per gradient step.
            # The target mix is due once, before the first step (the target is fixed during a phase).
            beta = self.prioritized_replay_beta()
            no_mix = tf.constant(0.0, tf.float32)
            loss_sum = q_sum = 0.0
            for step in range(gradient_steps):
                batch = self.replay.sample(self.rng, cfg.batch_size, beta=beta)
                loss, q_mean, errors = self._prioritized_step(mix if step == 0 else no_mix,
                                                              *(tf.constant(a) for a in batch[:7]))
                self.replay.update_priorities(batch.indices, errors.numpy())
                loss_sum, q_sum = loss_sum + float(loss), q_sum + float(q_mean)
            loss, q_mean = loss_sum / gradient_steps, q_sum / gradient_steps
            flat_weights = self.q_net.acting_weights()
            self.logger.record("train/prioritized_replay_beta", beta)
        self._n_updates += gradient_steps
        self._refresh_numpy_q_net(flat_weights)
        self.logger.record("train/loss", float(loss))
        self.logger.record("train/q_mean", float(q_mean))
        self.logger.record("train/n_updates", self._n_updates)

    # ------------------------------------------------------------------ save / load
    def _trainables(self) -> dict[str, Any]:
        return {"q_net": self.q_net, "q_net_target": self.q_net_target, "optimizer": self.optimizer}

    @classmethod
    def _upgrade_saved_arrays(cls, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Files saved while DQN had its own fused Adam hold ``optimizer/*`` as [iterations,
        learning_rate, first moments, second moments]; TorchStyleOptimizer's order is [first
        moments, iterations, second moments] (the learning rate comes from the config). Both are
        positional layouts (``optimizer/000``, ...); the output stays positional and is read by
        position (``core.saved_variables.restore``). Files that save by name are left as they are."""
        if not saved_variables.is_positional("optimizer", arrays):
            return arrays
        keys = sorted(k for k in arrays if k.startswith("optimizer/"))
        if len(keys) % 2:  # the positional layout holds 2 n + 1 arrays, the fused Adam's 2 n + 2
            return arrays
        n_moments = (len(keys) - 2) // 2
        old = [arrays.pop(key) for key in keys]
        iterations, first, second = old[0], old[2:2 + n_moments], old[2 + n_moments:]
        for index, value in enumerate([*first, iterations, *second]):
            arrays[f"optimizer/{index:03d}"] = value
        return arrays

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        arrays = {"dqn/counters": np.array([self._n_calls, self._pending_target_updates, self._n_updates], np.int64),
                  "dqn/exploration_rate": np.array([self.exploration_rate], np.float64)}
        if include_replay_buffer and self.replay is not None:
            arrays.update({f"replay/{key}": value for key, value in self.replay.state_arrays().items()})
        return arrays

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if "dqn/counters" in arrays:
            self._n_calls, self._pending_target_updates, self._n_updates = (int(v) for v in arrays["dqn/counters"])
            self.exploration_rate = float(arrays["dqn/exploration_rate"][0])
        replay = {key.split("/", 1)[1]: value for key, value in arrays.items() if key.startswith("replay/")}
        if replay and self.replay is not None:
            self.replay.load_state_arrays(replay)

    def _after_load(self) -> None:
        self.q_net_target.acting_weights()
        self._refresh_numpy_q_net(self.q_net.acting_weights())
