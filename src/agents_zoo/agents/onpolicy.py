"""The on-policy agent loop shared by A2C and PPO: config base, rollout collection, training loop.

Over ~500 lines because the config base documents every SB3 setting the two agents share
(normalization, gSDE, schedules) next to the loop that uses them.

The algorithm files (``a2c.py``, ``ppo.py``) hold only their config, loss and update. The policy
network (``core.policies.ActorCritic``) and the NumPy acting path (``core.policies``, shared with
DQN's Q-network) are not agent code and live in the neural layer.

Speed design (one TF call costs ~140-320 us on these CPUs, a NumPy MLP ~4 us):

* Acting runs in NumPy for MLP policies (``core.policies.NumpyActorCritic``): after every update
  the compiled update returns the policy's flat parameter vector, which the NumPy path slices
  into views; sampling uses the agent's ``self.rng``. CNN policies run one ``tf.function`` call
  per vector step (for all envs at once), sampling still in NumPy.
* MLP policies train ONE flat parameter variable (see ``core.policies``), so the update graphs
  pay TF's per-op cost once, not once per variable.
* Each update (PPO: all epochs and all minibatches) is ONE compiled graph call per rollout; the
  minibatch permutations are drawn with ``self.rng`` in NumPy and passed in, so runs are seeded.
* Optimizers use PyTorch's update formulas (``TorchStyleOptimizer``), so SB3's ``learning_rate``,
  Adam ``eps=1e-5`` and RMSprop ``alpha=0.99, eps=rms_prop_eps`` mean the same numbers here
  (Keras puts RMSprop's epsilon inside the square root, the "TF-like" variant).

Names map one-to-one onto Stable-Baselines3 (2.2.1 through 2.9.2) where the concept is the same:

=========================  ===========================================================
ours                       SB3
=========================  ===========================================================
n_envs                     ``make_vec_env(n_envs=...)``
n_steps, gamma, gae_lambda same names
ent_coef, vf_coef          same names
max_grad_norm              same name (clip by global norm)
normalize_advantage        same name (per minibatch, unbiased std, + 1e-8)
learning_rate              ``learning_rate`` (a float)
learning_rate_schedule     "linear" == RL-Zoo's ``lin_<lr>`` (lr * progress_remaining)
policy_hidden_sizes        ``policy_kwargs=dict(net_arch=dict(pi=[..], vf=[..]))`` (same
                           sizes for both; separate pi and vf MLPs like SB3's default)
activation                 ``policy_kwargs=dict(activation_fn=nn.Tanh)`` ("tanh"/"relu")
log_std_init               ``policy_kwargs=dict(log_std_init=...)``
use_sde, sde_sample_freq   same names (gSDE, Raffin et al. 2021; ``learn_features=False``)
full_std, use_expln,       ``policy_kwargs=dict(full_std=..., use_expln=...,
squash_output              squash_output=...)`` (gSDE only, as in SB3)
normalize_observation      ``VecNormalize(norm_obs=True, clip_obs=clip_observation)``
normalize_reward           ``VecNormalize(norm_reward=True, clip_reward=clip_reward)``
PPO: batch_size, n_epochs, same names; "linear" clip_range_schedule == ``lin_<clip>``
clip_range(_vf), target_kl
A2C: use_rms_prop,         same names (RMSprop alpha 0.99; Adam eps 1e-5 otherwise)
rms_prop_eps
=========================  ===========================================================

gSDE (``use_sde=True``, Box actions, MLP policies): the exploration noise is ``latent @ E``, where
``latent`` is the policy network's last hidden layer (the NumPy forward hands it out) and ``E`` is
one (latent_dim, action_dim) matrix per env drawn from N(0, std(log_std)) with ``self.rng``
(``core.distributions.StateDependentNoise`` holds the math). ``reset_noise`` draws them at the start
of every rollout (just after ``on_rollout_start``, the checkpoint point, so a resumed run draws the
same ones) and every ``sde_sample_freq`` steps within it when that is > 0 (SB3 counts the same
steps). The current matrices are saved with the agent (``exploration_matrices``), so a loaded
agent's next stochastic action is the one the saved agent would have taken. The ``log_std`` matrix
is the last piece of the policy's flat parameter vector. SB3 2.9.2's PPO and A2C do not
redraw the matrices in ``train`` (and the loss does not read them), so neither do we.

Substituted rewards (for GAIL and other learned rewards): set ``agent.reward_fn`` (or pass
``reward_fn=`` to the constructor / ``load``) to a function
``reward_fn(observations, actions, next_observations, dones) -> rewards``, the signature of
``imitation``'s ``RewardFn``. It is called once per rollout, before reward normalization and
GAE, with flat time-major arrays of all ``n_steps * n_envs`` transitions: raw (un-normalized)
observations, the actions as sent to the env (clipped to the bounds), the true next
observations (the final observation where an episode ended) and ``dones = terminated |
truncated``. Its result replaces the env rewards for learning; ``rollout/ep_rew_mean`` still
reports the env's own returns. Subclasses may instead override ``_rollout_rewards``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.core import distributions, networks
from agents_zoo.core.base import BaseAgent
from agents_zoo.core.buffers import RolloutBuffer
from agents_zoo.core.callbacks import BaseCallback
from agents_zoo.core.config import (AgentConfig, check_bool, check_choice, check_int, check_number,
                                    check_positive, check_probability, field)
from agents_zoo.core.normalization import RunningMeanStd
from agents_zoo.core.optimizers import TorchStyleOptimizer
from agents_zoo.core.policies import ActorCritic, NumpyActorCritic, sample_actions
from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.spaces import is_image_space

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
SCHEDULES = ("constant", "linear")


# ----------------------------------------------------------------------------- config
@dataclasses.dataclass
class OnPolicyConfig(AgentConfig):
    """Settings shared by A2C and PPO (defaults are SB3's; subclasses override theirs)."""

    learning_rate: float = field(3e-4, doc="optimizer step size (SB3 learning_rate)")
    learning_rate_schedule: str = field("constant", doc="constant, or linear: learning_rate * progress_remaining (RL-Zoo lin_<lr>)")
    n_steps: int = field(2048, doc="steps per env in each rollout; a rollout holds n_steps * n_envs transitions")
    gamma: float = field(0.99, doc="discount factor in [0, 1]")
    gae_lambda: float = field(0.95, doc="GAE lambda in [0, 1]; 1 gives n-step returns (Schulman et al. 2016)")
    ent_coef: float = field(0.0, doc="weight of the entropy bonus in the loss")
    vf_coef: float = field(0.5, doc="weight of the value loss in the loss")
    max_grad_norm: float = field(0.5, doc="clip gradients to this global norm")
    normalize_advantage: bool = field(True, doc="standardize advantages per minibatch")
    log_std_init: float = field(0.0, doc="initial log std of the Gaussian policy, or of gSDE's std matrix (Box actions)")
    network_init: str = field("orthogonal", doc="orthogonal: SB3's ortho_init=True (gain sqrt(2) hidden, 0.01 action "
                                                "head, 1 value head); torch: torch.nn's default U(+-1/sqrt(fan_in)) "
                                                "weights and biases, SB3's ortho_init=False (RL-Zoo's PyBullet settings)")
    use_sde: bool = field(False, doc="generalized state-dependent exploration (gSDE, SB3 use_sde; Box actions, MLP policies)")
    sde_sample_freq: int = field(-1, doc="gSDE: new exploration matrices every this many steps; -1 or 0: only at rollout starts")
    full_std: bool = field(True, doc="gSDE: one std per (latent feature, action) pair; false: one per latent feature")
    use_expln: bool = field(False, doc="gSDE: std = expln(log_std) (exp below 0, log1p + 1 above) instead of exp(log_std)")
    squash_output: bool = field(False, doc="gSDE: squash actions with tanh into [-1, 1], then rescale them to the Box bounds")
    normalize_observation: bool = field(False, doc="normalize observations by running mean/std (VecNormalize norm_obs)")
    normalize_reward: bool = field(False, doc="scale rewards by the std of the discounted return (VecNormalize norm_reward)")
    clip_observation: float = field(10.0, doc="clip normalized observations to +-this (VecNormalize clip_obs)")
    clip_reward: float = field(10.0, doc="clip normalized rewards to +-this (VecNormalize clip_reward)")
    # Off by measurement (benchmarks/results/xla, RL-Zoo settings, one thread, compile included):
    # A2C and PPO on Pendulum 4-8% faster compiled, PPO on Hopper (256x256) 6% slower, run-to-run
    # differences of the same size; and XLA's CPU convolutions are slower than oneDNN's (agents/dqn.py).
    jit_compile: bool = field(False, doc="compile the update with XLA (~1 s to compile; PPO needs batch_size to divide "
                                         "the rollout): within +-8% of plain graphs end to end here (xla sweep)")

    def validate(self) -> None:
        super().validate()
        check_positive(self, "learning_rate")
        check_choice(self, "learning_rate_schedule", SCHEDULES)
        check_int(self, "n_steps", minimum=1)
        check_probability(self, "gamma")
        check_probability(self, "gae_lambda")
        check_number(self, "ent_coef", minimum=0.0)
        check_number(self, "vf_coef", minimum=0.0)
        check_positive(self, "max_grad_norm")
        check_number(self, "log_std_init")
        check_choice(self, "network_init", networks.NETWORK_INITS)
        check_positive(self, "clip_observation")
        check_positive(self, "clip_reward")
        check_int(self, "sde_sample_freq", minimum=-1)
        for name in ("normalize_advantage", "normalize_observation", "normalize_reward", "jit_compile", "use_sde",
                     "full_std", "use_expln", "squash_output"):
            check_bool(self, name)
        if self.squash_output and not self.use_sde:
            raise ValueError("squash_output needs use_sde=True (as in SB3: only gSDE squashes its actions)")
        if self.normalize_advantage and self.rollout_size < 2:
            raise ValueError(f"normalize_advantage needs n_steps * n_envs >= 2 transitions per rollout, "
                             f"got n_steps={self.n_steps} * n_envs={self.n_envs} = {self.rollout_size}")

    @property
    def rollout_size(self) -> int:
        return self.n_steps * self.n_envs


def scheduled(value: float, schedule: str, progress_remaining: float) -> float:
    """SB3's schedules: constant, or linear from ``value`` at the start to 0 at the end."""
    return value * progress_remaining if schedule == "linear" else value


# ----------------------------------------------------------------------------- training helpers
def unbiased_standardize(x: tf.Tensor) -> tf.Tensor:
    """(x - mean) / (std + 1e-8) with the unbiased std, as torch's ``Tensor.std()`` in SB3."""
    n = tf.cast(tf.size(x), x.dtype)
    mean = tf.reduce_mean(x)
    std = tf.sqrt(tf.reduce_sum(tf.square(x - mean)) / (n - 1.0))
    return (x - mean) / (std + 1e-8)


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 - Var[y - y_pred] / Var[y]: 1 is perfect, 0 no better than a constant (SB3's formula)."""
    variance = np.var(targets)
    return float("nan") if variance == 0 else float(1.0 - np.var(targets - predictions) / variance)


# ----------------------------------------------------------------------------- the agent base
class OnPolicyAgent(BaseAgent):
    """Collects ``n_steps`` x ``n_envs`` rollouts and calls the subclass's ``_train`` on each."""

    config: OnPolicyConfig
    config_class = OnPolicyConfig
    checkpoint_between_rollouts_only = True  # a half-filled rollout is not saved (core/callbacks.py)

    def __init__(self, env: Any = None, config: Any = None, *, reward_fn: RewardFn | None = None, **kwargs: Any):
        self.reward_fn = reward_fn
        super().__init__(env, config, **kwargs)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.config
        image = is_image_space(self.observation_space)
        if cfg.normalize_observation and (image or not isinstance(self.observation_space, spaces.Box)):
            raise ValueError(f"normalize_observation needs a vector Box observation space, got {self.observation_space} "
                             "(images are scaled by 1/255 inside the CNN)")
        self.sde = self._make_sde(image)
        self.policy = ActorCritic(self.observation_space, self.action_space, cfg.policy_hidden_sizes, cfg.activation,
                                  cfg.log_std_init, seed=self.seed, compute_dtype=cfg.compute_dtype, sde=self.sde)
        self.optimizer = self._make_optimizer()
        self.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, self.observation_space, self.action_space,
                                    cfg.gamma, cfg.gae_lambda)
        self.observation_rms = RunningMeanStd(self.observation_space.shape) if cfg.normalize_observation else None
        self.return_rms = RunningMeanStd(()) if cfg.normalize_reward else None
        self._discounted_returns = np.zeros(cfg.n_envs)
        if cfg.network_init == "torch":  # its own generator: the agent's action stream stays the same
            self.policy.torch_default_init(np.random.default_rng(derive_seed(self.seed, 21)))
        self._numpy_policy = None if image else NumpyActorCritic(self.policy, self.observation_space)
        if image:
            self.policy.acting_weights()  # the CNN's acting copies start from the initial weights
        self._forward_graph = None
        # Images, when the subclass's update reads them: the CNN layer outputs of each rollout step's
        # acting call (one list per step; see _reuses_acting_layers).
        self._layers_graph = None
        self._rollout_layers: list[list[tf.Tensor]] = []
        if image:
            forward = tf.function(lambda observations: self.policy.acting_heads(observations)[:2])
            # A concrete function skips tf.function's dispatch (its argument matching cost ~5% of a
            # PPO Breakout run's CPU time, one call per vector step), as DQN's greedy graph does.
            frames_spec = tf.TensorSpec([None, *self.observation_space.shape], self.observation_space.dtype)
            self._forward_graph = forward.get_concrete_function(frames_spec)
            if self._reuses_acting_layers():
                self._layers_graph = tf.function(self.policy.acting_heads_and_layers).get_concrete_function(frames_spec)
        self._box_actions = isinstance(self.action_space, spaces.Box)
        self._iteration = 0
        self._transitions: dict[str, np.ndarray] | None = None
        # autograph=False: the loops are graph loops already, and converting the losses' source
        # costs seconds of tracing on every new agent.
        self._update_graph = tf.function(self._update, jit_compile=self._uses_jit(), autograph=False)
        self._update_concrete: tuple[tuple, Any] | None = None
        self._exploration_matrices: np.ndarray | None = None
        if self.sde is not None:
            self.reset_noise()  # as SB3's policy does when it is built: predict() may come before learn()

    def _make_sde(self, image: bool) -> distributions.StateDependentNoise | None:
        """gSDE's distribution when ``use_sde`` (checked against the spaces), else None."""
        cfg, space = self.config, self.action_space
        if not cfg.use_sde:
            return None
        if not isinstance(space, spaces.Box):
            raise ValueError(f"use_sde needs Box (continuous) actions, got {space}")
        if image:
            raise ValueError(f"use_sde needs vector observations (an MLP policy), got images {self.observation_space}")
        if cfg.squash_output and not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise ValueError(f"squash_output rescales actions to the Box bounds, which must be finite, got {space}")
        return distributions.StateDependentNoise(int(np.prod(space.shape)), cfg.full_std, cfg.use_expln, cfg.squash_output)

    def reset_noise(self) -> None:
        """gSDE: draw new exploration matrices, one per env, with ``self.rng`` (SB3's ``policy.reset_noise``)."""
        if self.sde is None:
            raise RuntimeError("reset_noise() needs use_sde=True")
        self._exploration_matrices = self.sde.np_sample_matrices(self._numpy_policy.log_std, self.n_envs, self.rng)

    def _uses_jit(self) -> bool:
        return self.config.jit_compile

    def _reuses_acting_layers(self) -> bool:
        """Whether the update reads the CNN layer outputs that the rollout's acting calls computed
        (``_take_rollout_layers``) instead of running the CNN forward again: sound only for an update
        that starts from the weights the rollout acted with, as A2C's single gradient step does."""
        return False

    def _take_rollout_layers(self) -> list[tf.Tensor]:
        """The CNN layer outputs of the whole rollout just collected, each (n_steps * n_envs, ...) in
        the buffer's time-major order, released from the agent; empty if they were not kept."""
        steps, self._rollout_layers = self._rollout_layers, []
        if len(steps) != self.config.n_steps:  # none kept (or the buffer was filled by other code)
            return []
        return [tf.concat([step[index] for step in steps], axis=0) for index in range(len(steps[0]))]

    def _make_optimizer(self) -> TorchStyleOptimizer:
        return TorchStyleOptimizer(self.policy.trainable_variables, "adam", epsilon=1e-5)

    def _trainables(self) -> dict[str, Any]:
        return {"policy": self.policy, "optimizer": self.optimizer}

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        if self.observation_rms is not None:
            arrays.update(self.observation_rms.state_arrays("observation_rms"))
        if self.return_rms is not None:
            arrays.update(self.return_rms.state_arrays("return_rms"))
            arrays["discounted_returns"] = self._discounted_returns.copy()
        if self._exploration_matrices is not None:
            arrays["exploration_matrices"] = self._exploration_matrices.copy()
        return arrays

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if self.observation_rms is not None:
            self.observation_rms.load_state_arrays("observation_rms", arrays)
        if self.return_rms is not None:
            self.return_rms.load_state_arrays("return_rms", arrays)
            if arrays["discounted_returns"].shape == self._discounted_returns.shape:
                self._discounted_returns[:] = arrays["discounted_returns"]
        # gSDE's current matrices; loaded onto another number of envs, the freshly drawn ones stay.
        saved = arrays.get("exploration_matrices")
        if self._exploration_matrices is not None and saved is not None and saved.shape == self._exploration_matrices.shape:
            self._exploration_matrices[:] = saved

    def _after_load(self) -> None:
        self._refresh_numpy_policy(self.policy.acting_weights())

    def _refresh_numpy_policy(self, flat_weights: tf.Tensor) -> None:
        if self._numpy_policy is not None:
            self._numpy_policy.load(flat_weights.numpy())

    # ------------------------------------------------------------------ acting
    def _normalize_observations(self, observations: np.ndarray) -> np.ndarray:
        if self.observation_rms is None:
            return observations
        return self.observation_rms.normalize(observations, clip=self.config.clip_observation)

    def _forward(self, policy_observations: np.ndarray, keep_layers: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(policy output, values) for already-normalized observations: NumPy, or one TF call for CNNs
        (``keep_layers``: a rollout step, whose CNN layer outputs the update may read)."""
        if self._numpy_policy is not None:
            return self._numpy_policy.forward(policy_observations)
        frames = tf.constant(np.asarray(policy_observations, dtype=self.observation_space.dtype))
        if keep_layers and self._layers_graph is not None:
            policy_output, values, layers_out = self._layers_graph(frames)
            self._rollout_layers.append(layers_out)
        else:
            policy_output, values = self._forward_graph(frames)
        return policy_output.numpy(), values.numpy()

    def log_std(self) -> np.ndarray | None:
        """The policy's current ``log_std`` (with gSDE, the log-scale of the exploration weights), as
        acting reads it; None for discrete actions."""
        if self.policy.discrete:
            return None
        return self._numpy_policy.log_std if self._numpy_policy is not None else self.policy.log_std.numpy()

    def _to_env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Gaussian samples are clipped to the bounds for the env; the buffer keeps them unclipped.
        gSDE's squashed actions (in [-1, 1]) are rescaled to the bounds instead (SB3's ``unscale_action``)."""
        if not self._box_actions:
            return actions
        space = self.action_space
        actions = actions.reshape(len(actions), *space.shape)
        if self.sde is not None and self.sde.squash_output:
            return space.low + 0.5 * (actions + 1.0) * (space.high - space.low)
        return np.clip(actions, space.low, space.high)

    def _act(self, policy_observations: np.ndarray, log_std: np.ndarray | None,
             deterministic: bool, keep_layers: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(actions, log-probabilities, values) for already-normalized observations."""
        if self.sde is not None:
            mean, values, latent = self._numpy_policy.forward_with_latent(policy_observations)
            actions, log_probs = self.sde.np_sample(mean, latent, log_std, self._exploration_matrices, deterministic)
            return actions, log_probs, values
        policy_output, values = self._forward(policy_observations, keep_layers)
        actions, log_probs = sample_actions(policy_output, log_std, self.rng, deterministic)
        return actions, log_probs, values

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        actions, _, _ = self._act(self._normalize_observations(observations), self.log_std(), deterministic)
        return self._to_env_actions(actions)

    def _reset_env(self) -> np.ndarray:
        observations = super()._reset_env()
        self._discounted_returns[:] = 0.0  # new episodes, as SB3's VecNormalize.reset() restarts its returns
        if self.observation_rms is not None:
            self.observation_rms.update(observations)
        return observations

    # ------------------------------------------------------------------ rollouts
    def _collect_rollout(self, callback: BaseCallback) -> bool:
        """Fill the buffer with ``n_steps`` vector steps; False if a callback asked to stop."""
        assert self._last_obs is not None
        buffer, n_steps = self.buffer, self.config.n_steps
        buffer.reset()
        callback.on_rollout_start()  # the safe point for checkpoints: the last update is done
        record = self.reward_fn is not None or type(self)._rollout_rewards is not OnPolicyAgent._rollout_rewards
        if record:
            transitions = self._transition_arrays()
        log_std = self.log_std()
        # gSDE: new matrices at every rollout start, after the checkpoint point, then every sde_sample_freq steps.
        sde_sample_freq = self.config.sde_sample_freq if self.sde is not None else 0
        if self.sde is not None:
            self.reset_noise()
        observations = self._last_obs
        self._rollout_layers = []
        for step in range(n_steps):
            if sde_sample_freq > 0 and step > 0 and step % sde_sample_freq == 0:
                self.reset_noise()
            policy_observations = self._normalize_observations(observations)
            actions, log_probs, values = self._act(policy_observations, log_std, deterministic=False, keep_layers=True)
            env_actions = self._to_env_actions(actions)
            next_observations, rewards, terminated, truncated, final_observations = self._env_step(env_actions)
            if self.observation_rms is not None:
                self.observation_rms.update(next_observations)  # after the env step, as VecNormalize does
            buffer.add(policy_observations, actions, rewards, values, log_probs, terminated, truncated)
            if record:
                transitions["observations"][step] = observations
                transitions["actions"][step] = env_actions
                transitions["next_observations"][step] = next_observations
            if final_observations:
                self._handle_episode_ends(step, truncated, final_observations, transitions if record else None)
            observations = next_observations
            if not callback.on_step():
                self._last_obs = observations
                self._rollout_layers = []  # no update reads a rollout cut short
                return False
        self._last_obs = observations
        if record:
            dones = np.logical_or(buffer.terminations, buffer.truncations)
            buffer.rewards[:] = self._rollout_rewards(transitions, dones, buffer.rewards)
        if self.return_rms is not None:
            self._normalize_rollout_rewards()
        _, last_values = self._forward(self._normalize_observations(observations))
        buffer.compute_returns_and_advantage(last_values)
        callback.on_rollout_end()
        return True

    def _handle_episode_ends(self, step: int, truncated: np.ndarray, final_observations: dict[int, np.ndarray],
                             transitions: dict[str, np.ndarray] | None) -> None:
        """Bootstrap truncated episodes from V(final observation); record true next observations."""
        truncated_envs = [i for i in final_observations if truncated[i]]
        if truncated_envs:
            finals = np.stack([final_observations[i] for i in truncated_envs])
            _, values = self._forward(self._normalize_observations(finals))
            self.buffer.set_truncation_values(np.array(truncated_envs), values)
        if transitions is not None:
            for i, final in final_observations.items():
                transitions["next_observations"][step, i] = final

    def _transition_arrays(self) -> dict[str, np.ndarray]:
        """(n_steps, n_envs, ...) arrays of raw transitions for the reward hook, allocated once."""
        if self._transitions is None:
            n, shape = (self.config.n_steps, self.n_envs), self.buffer.observations.shape[2:]
            env_action_shape = () if not self._box_actions else self.action_space.shape
            obs_dtype = self.observation_space.dtype if self.observation_space.dtype == np.uint8 else np.float32
            self._transitions = {
                "observations": np.zeros((*n, *shape), dtype=obs_dtype),
                "actions": np.zeros((*n, *env_action_shape), dtype=self.buffer.actions.dtype),
                "next_observations": np.zeros((*n, *shape), dtype=obs_dtype),
            }
        return self._transitions

    def _rollout_rewards(self, transitions: dict[str, np.ndarray], dones: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """The rewards to learn from, (n_steps, n_envs): ``reward_fn``'s if one is set (see module doc)."""
        if self.reward_fn is None:
            return rewards
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in transitions.items()}
        substituted = np.asarray(self.reward_fn(flat["observations"], flat["actions"], flat["next_observations"],
                                                dones.reshape(-1)), dtype=np.float32)
        if substituted.shape != (rewards.size,):
            raise ValueError(f"reward_fn returned shape {substituted.shape}, expected ({rewards.size},) "
                             "(one reward per transition)")
        return substituted.reshape(rewards.shape)

    def _normalize_rollout_rewards(self) -> None:
        """VecNormalize's reward scaling, step by step: r / std(discounted return), clipped."""
        assert self.return_rms is not None
        buffer, gamma, clip = self.buffer, self.config.gamma, self.config.clip_reward
        dones = np.logical_or(buffer.terminations, buffer.truncations)
        for t in range(buffer.n_steps):
            self._discounted_returns = self._discounted_returns * gamma + buffer.rewards[t]
            self.return_rms.update(self._discounted_returns)
            buffer.rewards[t] = np.clip(buffer.rewards[t] / np.sqrt(self.return_rms.var + 1e-8), -clip, clip)
            self._discounted_returns[dones[t]] = 0.0

    # ------------------------------------------------------------------ training loop
    @property
    def steps_per_iteration(self) -> int:
        return self.config.rollout_size

    def _learn(self, callback: BaseCallback, log_interval: int) -> None:
        while self.num_timesteps < self._total_timesteps:
            if not self._collect_rollout(callback):
                break
            self._iteration += 1
            stats = self._train()
            if log_interval and self._iteration % log_interval == 0:
                for key, value in stats.items():
                    self.logger.record(f"train/{key}", value)
                self.logger.record("train/explained_variance", explained_variance(self.buffer.values, self.buffer.returns))
                if not self.policy.discrete:
                    self.logger.record("train/std", float(np.exp(self.log_std()).mean()))
                self.logger.record("time/iterations", self._iteration)
                self._record_rollout_stats()
                self.logger.dump(self.num_timesteps)

    def _current_learning_rate(self) -> float:
        return scheduled(self.config.learning_rate, self.config.learning_rate_schedule, self.progress_remaining)

    def _train(self) -> dict[str, float]:
        """One update on the full buffer; returns scalars logged as ``train/<name>``."""
        raise NotImplementedError

    def _call_update(self, *inputs: np.ndarray) -> Any:
        """Run the compiled update at the least Python and executor cost per call.

        * The traced concrete function is called directly with flat tensors: ``tf.function``
          dispatch (signature hashing) costs ~0.5 ms and the concrete function's structured-argument
          binding ~0.1 ms per call here, as much as the A2C update's own ops.
        """
        tensors = [tf.convert_to_tensor(x) for x in inputs]
        signature = tuple((t.dtype, tuple(t.shape)) for t in tensors)
        if self._update_concrete is None or self._update_concrete[0] != signature:
            concrete = self._update_graph.get_concrete_function(*tensors)
            call_flat = getattr(concrete, "_call_flat", None)  # private in TF 2.21; else the public call
            if call_flat is not None:
                captured = concrete.captured_inputs

                def call(*flat: tf.Tensor) -> Any:
                    return call_flat(list(flat), captured)
            else:
                call = concrete
            self._update_concrete = (signature, call)
        return self._update_concrete[1](*tensors)

    def _update(self, *args: tf.Tensor) -> Any:
        """The compiled update (wrapped in ``tf.function`` as ``self._update_graph``)."""
        raise NotImplementedError
