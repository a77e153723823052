"""Generative Adversarial Imitation Learning (Ho & Ermon 2016) with our PPO as the generator.

    demos = load_demonstrations("demos.npz")            # or agents-zoo expert train ... --demos
    agent = GAIL("seals/CartPole-v0", demonstrations=demos, seed=0)
    agent.learn(200_000); agent.evaluate(10)

A discriminator D(s, a) (the shared adversarial block of :mod:`agents_zoo.core.adversarial`) learns
to tell expert (observation, action) pairs from the policy's; PPO is trained on a reward
derived from its logit. Each round follows Algorithm 1 of the paper: collect one PPO rollout,
take ``n_disc_updates_per_round`` discriminator steps on expert vs. policy batches, relabel the
rollout's rewards with the updated discriminator, then run the PPO update on them.

Reward forms, with ``D = sigmoid(logit)`` the probability of "expert":

* ``gail``:   ``-log(1 - D) = softplus(logit)`` (positive; imitation's default),
* ``log_d``:  ``log D = -softplus(-logit)`` (negative; a survival penalty),
* ``logit``:  ``log D - log(1 - D) = logit`` (AIRL-style, Fu et al. 2018),
* ``mirror``: the discriminator is trained with expert pairs toward 0 and policy pairs toward 1,
  the reward is ``-log sigmoid(logit)`` (Ho & Ermon 2016's own convention: D is trained toward 1 on
  the policy's pairs, and the policy's cost is log D).

Discriminator inputs are the flattened observation concatenated with the action (one-hot for
Discrete), normalized by a running mean/std (imitation's ``RunningNorm``). Stabilizers: a
gradient penalty on interpolates (Gulrajani et al. 2017, as used by DAC, Kostrikov et al. 2019),
an entropy bonus on D's Bernoulli output (``entcoeff`` of the original GAIL code), and several
discriminator steps per round.

Settings. The defaults are the imitation GAIL tutorial's (PPO gamma 0.95, 5 epochs, lr 4e-4;
8 discriminator steps). On seals/CartPole-v0 that generator reached 475 on only 3 of 5 seeds: the
stalled seeds spin the pole through upright (the env never terminates) while D keeps expert
accuracy 1.0. A gradient penalty, a PPO entropy bonus, the logit reward or fewer D steps did not
fix it; the generator did: RL-Zoo's CartPole PPO on small rounds (8 x 32 steps, 20 epochs, lr
1e-3, gamma 0.98, GAE 0.8) with one D step per round reaches 475 on 5 of 5 seeds in 35k-53k
steps (``benchmarks/results/gail_seals_CartPole-v0.md``).
Rule of thumb: give GAIL the PPO settings that learn the env from its true reward, and keep D to
about one step per few hundred env steps.

Where the demonstrations come from. ``demonstrations=`` (a path, a :class:`Demonstrations` or
imitation trajectories) or ``demonstrations_path`` (read when the agent is made; a relative path
is made absolute against the current directory then, and saved so). ``save`` stores the expert
pairs in the model file (``expert/features``), so a loaded model never needs the ``.npz`` again.
On ``load`` what was saved wins: the saved expert pairs are used, and ``demonstrations_path``
is not read; only a file saved before any demonstrations were set holds the path alone, and then
only an absolute path is read. A relative path (from files of earlier versions) is never
resolved against the current directory, so a ``demos.npz`` that happens to lie there cannot
replace what the model was trained on: ``learn`` then asks for ``demonstrations=`` or
:meth:`GAIL.set_demonstrations`. ``load(..., demonstrations=...)`` given explicitly replaces the
saved pairs.

Termination bias: a reward that is always positive (or always negative) tells the policy to
prolong (or end) episodes whatever the expert did (Kostrikov et al. 2019, section 4.2). As in
``imitation``, variable-horizon episodes are refused unless ``allow_variable_horizon=True``;
use the fixed-horizon ``seals/...`` envs. The check reads the demonstrations' episode lengths
and every episode the policy finishes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.agents.ppo import PPO, PPOConfig
from agents_zoo.core import adversarial
from agents_zoo.core.base import loading_from_file
from agents_zoo.core.buffers import ReplayBuffer
from agents_zoo.core.config import check_bool, check_choice, check_int, check_number, check_positive, field
from agents_zoo.core.networks import preprocess_numpy
from agents_zoo.core.normalization import RunningMeanStd
from agents_zoo.core.optimizers import TorchStyleOptimizer
from agents_zoo.demonstrations import Demonstrations, from_trajectories, load_demonstrations

REWARD_FORMS = ("gail", "log_d", "logit", "mirror")


class VariableHorizonError(ValueError):
    """Episodes of different lengths, refused because GAIL's reward leaks through termination."""


# ----------------------------------------------------------------------------- config
@dataclasses.dataclass
class GAILConfig(PPOConfig):
    """GAIL settings. PPO defaults are the generator of imitation's GAIL tutorial."""

    n_envs: int = field(8, doc="number of environments stepped together")
    learning_rate: float = field(4e-4, doc="PPO Adam step size")
    gamma: float = field(0.95, doc="PPO discount factor")
    n_epochs: int = field(5, doc="PPO passes over each rollout")
    batch_size: int = field(64, doc="PPO minibatch size")
    demonstrations_path: str | None = field(None, doc="expert .npz (classic GAIL layout), made absolute when the agent "
                                                     "is made; or pass demonstrations=")
    reward_form: str = field("gail", doc="gail: -log(1-D); log_d: log D; logit: log D - log(1-D); mirror: -log sigmoid, expert->0")
    disc_hidden_sizes: tuple[int, ...] = field((32, 32), doc="discriminator hidden layers (imitation BasicRewardNet: 32, 32)")
    disc_activation: str = field("relu", doc="discriminator hidden activation")
    disc_learning_rate: float = field(1e-3, doc="discriminator Adam step size (torch Adam default, as imitation)")
    demo_batch_size: int = field(1024, doc="expert (and as many policy) samples per discriminator step")
    n_disc_updates_per_round: int = field(8, doc="discriminator steps after each rollout")
    gen_replay_buffer_capacity: int | None = field(None, doc="policy samples kept for the discriminator; None: one rollout")
    normalize_disc_input: bool = field(True, doc="normalize discriminator inputs by running mean/std (imitation RunningNorm)")
    grad_penalty_coef: float = field(0.0, doc="gradient penalty weight on expert/policy interpolates (Gulrajani 2017); 0: off")
    disc_entropy_coef: float = field(0.0, doc="bonus on the entropy of D's Bernoulli output (GAIL code entcoeff, 1e-3)")
    allow_variable_horizon: bool = field(False, doc="accept episodes of different lengths despite the termination bias")

    @classmethod
    def parse_cli_value(cls, key: str, text: str) -> Any:
        value = super().parse_cli_value(key, text)
        if key == "demonstrations_path" and isinstance(value, str):
            # Relative to the directory the command runs in, as the agent would make it; so a
            # --resume repeating the same --config compares equal to the saved absolute path.
            value = os.path.abspath(value)
        return value

    def validate(self) -> None:
        super().validate()
        check_choice(self, "reward_form", REWARD_FORMS)
        sizes = self.disc_hidden_sizes
        if not isinstance(sizes, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"disc_hidden_sizes must be a tuple of positive ints, got {sizes!r}")
        check_choice(self, "disc_activation", self.ACTIVATIONS)
        check_positive(self, "disc_learning_rate")
        check_int(self, "demo_batch_size", minimum=1)
        check_int(self, "n_disc_updates_per_round", minimum=1)
        if self.gen_replay_buffer_capacity is not None:
            check_int(self, "gen_replay_buffer_capacity", minimum=1)
        check_number(self, "grad_penalty_coef", minimum=0.0)
        check_number(self, "disc_entropy_coef", minimum=0.0)
        for name in ("normalize_disc_input", "allow_variable_horizon"):
            check_bool(self, name)
        if self.demonstrations_path is not None and not isinstance(self.demonstrations_path, str):
            raise ValueError(f"demonstrations_path must be a path string or None, got {self.demonstrations_path!r}")


# ----------------------------------------------------------------------------- loss and reward
def gail_reward(logits: Any, form: str = "gail") -> tf.Tensor:
    """The generator's reward from discriminator logits (see the module docstring)."""
    logits = tf.cast(logits, tf.float32)
    if form == "gail":
        return tf.nn.softplus(logits)  # -log(1 - sigmoid(x)) = softplus(x), without overflow
    if form == "log_d":
        return -tf.nn.softplus(-logits)  # log sigmoid(x)
    if form == "logit":
        return logits  # log D - log(1 - D) = x
    if form == "mirror":
        return adversarial.expert_reward(logits)  # -log sigmoid(x), expert pairs trained toward 0
    raise ValueError(f"reward_form must be one of {', '.join(REWARD_FORMS)}, got {form!r}")


def bernoulli_entropy(logits: tf.Tensor) -> tf.Tensor:
    """H(sigmoid(x)) = (1 - sigmoid(x)) x - log sigmoid(x) (the GAIL code's logit_bernoulli_entropy)."""
    return (1.0 - tf.sigmoid(logits)) * logits + tf.nn.softplus(-logits)


def discriminator_objective(expert_logits: Any, policy_logits: Any, form: str = "gail",
                            entropy_coef: float = 0.0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(loss, expert accuracy, policy accuracy) of one discriminator batch, gradient penalty aside.

    Binary cross-entropy with expert as "real" (the ``mirror`` form swaps the sides), minus
    ``entropy_coef`` times the mean Bernoulli entropy of all outputs.
    """
    expert_logits = tf.reshape(tf.cast(expert_logits, tf.float32), [-1])
    policy_logits = tf.reshape(tf.cast(policy_logits, tf.float32), [-1])
    if form == "mirror":
        loss = adversarial.discriminator_loss(policy_logits, expert_logits)
        expert_hits, policy_hits = expert_logits < 0, policy_logits > 0
    else:
        loss = adversarial.discriminator_loss(expert_logits, policy_logits)
        expert_hits, policy_hits = expert_logits > 0, policy_logits < 0
    if entropy_coef:
        loss -= entropy_coef * tf.reduce_mean(bernoulli_entropy(tf.concat([expert_logits, policy_logits], 0)))
    return (loss, tf.reduce_mean(tf.cast(expert_hits, tf.float32)), tf.reduce_mean(tf.cast(policy_hits, tf.float32)))


# ----------------------------------------------------------------------------- the agent
class GAIL(PPO):
    name = "gail"
    config_class = GAILConfig
    config: GAILConfig

    def __init__(self, env: Any = None, config: Any = None, *, demonstrations: Any = None, **kwargs: Any):
        if kwargs.get("reward_fn") is not None:
            raise ValueError("GAIL computes its own reward; reward_fn is for plain PPO")
        self._demonstrations_arg = demonstrations
        super().__init__(env, config, **kwargs)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        super()._setup()
        cfg = self.config
        self._discrete_actions = isinstance(self.action_space, spaces.Discrete)
        self.disc_input_dim = self._feature_dim()
        self.discriminator = adversarial.build_mlp_discriminator(
            self.disc_input_dim, cfg.disc_hidden_sizes, activation=cfg.disc_activation, name="gail_discriminator")
        self.disc_optimizer = TorchStyleOptimizer(self.discriminator.trainable_variables, "adam", epsilon=1e-8)
        self.disc_input_rms = RunningMeanStd((self.disc_input_dim,)) if cfg.normalize_disc_input else None
        # imitation's gen_replay_buffer: the newest policy transitions, which D learns to tell from
        # the expert's. Each round adds the newest min(capacity, rollout) of the rollout's transitions,
        # flattened time-major, in ONE add: the buffer's "envs" are those rows (GAIL samples 1-step).
        capacity = cfg.gen_replay_buffer_capacity or cfg.rollout_size
        self.gen_replay = ReplayBuffer(capacity, self.observation_space, self.action_space,
                                       n_envs=min(capacity, cfg.rollout_size))
        self._disc_update_graph = tf.function(self._disc_update)
        self._logits_graph = tf.function(lambda x: tf.reshape(self.discriminator(x), [-1]))
        self.expert_features: np.ndarray | None = None
        self.expert_horizon: int | None = None
        self._missing_demonstrations: str | None = None  # why there are none, for learn()'s error
        if self._demonstrations_arg is not None:
            self.set_demonstrations(self._demonstrations_arg)
        elif cfg.demonstrations_path is not None and loading_from_file() is None:
            # A fresh agent: the path means the file it names now, from this directory; saved
            # absolute, it names the same file wherever the model is loaded.
            path = os.path.abspath(cfg.demonstrations_path)
            if path != cfg.demonstrations_path:
                self.config = cfg = cfg.replace(demonstrations_path=path)
            if Path(path).is_file():
                self.set_demonstrations(path)
            else:  # fails at learn(), naming the path
                self._missing_demonstrations = f"no file at demonstrations_path={path!r}"
        # While loading, nothing is read here: _load_extra_state_arrays and _after_load apply
        # the saved pairs first (see the module docstring).

    def _feature_dim(self) -> int:
        obs_dim = preprocess_numpy(self.observation_space, np.zeros((1, *self._obs_shape()))).shape[1]
        action_dim = int(self.action_space.n) if self._discrete_actions else int(np.prod(self.action_space.shape))
        return int(obs_dim + action_dim)

    def _obs_shape(self) -> tuple[int, ...]:
        return () if isinstance(self.observation_space, spaces.Discrete) else tuple(self.observation_space.shape)

    def set_demonstrations(self, demonstrations: Any) -> None:
        """Use these expert demonstrations: a path, a :class:`Demonstrations` or imitation trajectories."""
        if isinstance(demonstrations, (str, Path)):
            demonstrations = load_demonstrations(demonstrations)
        elif isinstance(demonstrations, (list, tuple)):
            demonstrations = from_trajectories(demonstrations)
        if not isinstance(demonstrations, Demonstrations):
            raise TypeError(f"demonstrations must be a .npz path, a Demonstrations or a list of imitation "
                            f"trajectories, got {type(demonstrations).__name__}")
        obs_shape = self._obs_shape()
        if demonstrations.observations.shape[2:] != obs_shape:
            raise ValueError(f"demonstration observations have shape {demonstrations.observations.shape[2:]} per step, "
                             f"but the env's observation space {self.observation_space} has {obs_shape}")
        if not demonstrations.fixed_horizon and not self.config.allow_variable_horizon:
            raise VariableHorizonError(
                f"the demonstrations have episode lengths from {demonstrations.lengths.min()} to "
                f"{demonstrations.lengths.max()}; GAIL's reward leaks information through episode ends "
                "(termination bias, Kostrikov et al. 2019). Use a fixed-horizon env (e.g. seals/CartPole-v0), "
                "or pass allow_variable_horizon=True to accept the bias, as imitation requires.")
        observations, actions = demonstrations.transitions()
        self.expert_features = self._features(observations, actions)
        self.expert_horizon = int(demonstrations.lengths[0]) if demonstrations.fixed_horizon else None

    def _features(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Discriminator inputs: flat observations next to actions (one-hot for Discrete)."""
        obs = preprocess_numpy(self.observation_space, np.asarray(observations))
        if self._discrete_actions:
            actions = np.asarray(actions).reshape(-1)
            n = int(self.action_space.n)
            if actions.dtype.kind == "f":
                if not np.all(actions == np.round(actions)):
                    raise ValueError("Discrete actions must be whole numbers, got fractional values")
                actions = actions.astype(np.int64)
            if actions.size and (actions.min() < 0 or actions.max() >= n):
                raise ValueError(f"Discrete actions must be in [0, {n}), got values from {actions.min()} to {actions.max()}")
            acts = np.eye(n, dtype=np.float32)[actions]
        else:
            acts = np.asarray(actions, dtype=np.float32).reshape(len(obs), -1)
            if acts.shape[1] != int(np.prod(self.action_space.shape)):
                raise ValueError(f"actions have {acts.shape[1]} dims, the action space {self.action_space} has "
                                 f"{int(np.prod(self.action_space.shape))}")
        return np.concatenate([obs, acts], axis=1).astype(np.float32)

    def _normalized(self, features: np.ndarray) -> np.ndarray:
        return features if self.disc_input_rms is None else self.disc_input_rms.normalize(features)

    # ------------------------------------------------------------------ the discriminator
    def discriminator_logits(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """D's logits for (observation, action) pairs (positive: expert-like, except in ``mirror``)."""
        features = self._normalized(self._features(observations, actions))
        return self._logits_graph(tf.constant(features)).numpy()

    def predict_reward(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The reward the policy is trained on, for plotting agent vs. expert trajectories."""
        return gail_reward(self.discriminator_logits(observations, actions), self.config.reward_form).numpy()

    def _disc_update(self, expert_batches: tf.Tensor, policy_batches: tf.Tensor, mix: tf.Tensor,
                     learning_rate: tf.Tensor) -> tf.Tensor:
        """All ``n_disc_updates_per_round`` steps in one graph; returns mean (loss, acc_e, acc_g, penalty)."""
        cfg = self.config
        variables = self.discriminator.trainable_variables
        sums = tf.zeros([4])
        for k in tf.range(tf.shape(expert_batches)[0]):
            expert, policy = expert_batches[k], policy_batches[k]
            with tf.GradientTape() as tape:
                loss, expert_acc, policy_acc = discriminator_objective(
                    self.discriminator(expert), self.discriminator(policy), cfg.reward_form, cfg.disc_entropy_coef)
                penalty = tf.constant(0.0)
                if cfg.grad_penalty_coef:
                    # ||grad_x D(x)|| pushed toward 1 on random interpolates of expert and policy inputs.
                    interpolates = mix[k] * expert + (1.0 - mix[k]) * policy
                    with tf.GradientTape() as inner:
                        inner.watch(interpolates)
                        interpolate_logits = self.discriminator(interpolates)
                    gradients = inner.gradient(interpolate_logits, interpolates)
                    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=1) + 1e-12)
                    penalty = tf.reduce_mean(tf.square(norms - 1.0))
                total = loss + cfg.grad_penalty_coef * penalty
            self.disc_optimizer.apply(tape.gradient(total, variables), variables, learning_rate)
            sums += tf.stack([loss, expert_acc, policy_acc, penalty])
        return sums / tf.cast(tf.shape(expert_batches)[0], tf.float32)

    def _remember_policy_transitions(self, transitions: dict[str, np.ndarray], dones: np.ndarray,
                                     rewards: np.ndarray) -> None:
        """Add the rollout's newest transitions to ``gen_replay`` (they replace the oldest)."""
        newest = self.gen_replay.n_envs

        def rows(array: np.ndarray) -> np.ndarray:  # (n_steps, n_envs, ...) -> the newest rows, time-major
            return array.reshape(-1, *array.shape[2:])[-newest:]

        self.gen_replay.add(rows(transitions["observations"]), rows(transitions["actions"]), rows(rewards),
                            rows(transitions["next_observations"]), rows(self.buffer.terminations), rows(dones))

    def _train_discriminator(self) -> dict[str, float]:
        cfg = self.config
        assert self.expert_features is not None
        shape = (cfg.n_disc_updates_per_round, cfg.demo_batch_size)
        expert = self.expert_features[self.rng.integers(0, len(self.expert_features), size=shape)]
        sampled = self.gen_replay.sample(self.rng, cfg.demo_batch_size, cfg.n_disc_updates_per_round)
        count = cfg.n_disc_updates_per_round * cfg.demo_batch_size
        policy = self._features(sampled.observations.reshape(count, *self._obs_shape()),
                                sampled.actions.reshape(count, *sampled.actions.shape[2:])).reshape(*shape, -1)
        if self.disc_input_rms is not None:
            self.disc_input_rms.update(np.concatenate([expert, policy]).reshape(-1, self.disc_input_dim))
        mix = self.rng.random((*shape, 1)).astype(np.float32)
        means = self._disc_update_graph(self._normalized(expert), self._normalized(policy), mix,
                                        np.float32(cfg.disc_learning_rate)).numpy()
        return dict(zip(("loss", "expert_acc", "gen_acc", "grad_penalty"), means.tolist()))

    # ------------------------------------------------------------------ PPO hooks
    def _learn(self, callback: Any, log_interval: int) -> None:
        if self.expert_features is None:
            where = f": {self._missing_demonstrations}" if self._missing_demonstrations else ""
            raise RuntimeError(f"GAIL has no demonstrations{where}; pass demonstrations= (a .npz path, "
                               "Demonstrations or imitation trajectories), call set_demonstrations() "
                               "or set demonstrations_path")
        super()._learn(callback, log_interval)

    def _rollout_rewards(self, transitions: dict[str, np.ndarray], dones: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Train D on this rollout (Ho & Ermon 2016, Algorithm 1, step 4), then relabel its rewards."""
        assert self.expert_features is not None
        observations = transitions["observations"].reshape(-1, *transitions["observations"].shape[2:])
        actions = transitions["actions"].reshape(-1, *transitions["actions"].shape[2:])
        features = self._features(observations, actions)
        self._remember_policy_transitions(transitions, dones, rewards)
        stats = self._train_discriminator()
        learned = gail_reward(self._logits_graph(tf.constant(self._normalized(features))), self.config.reward_form)
        learned = learned.numpy().reshape(rewards.shape)
        for key, value in stats.items():
            self.logger.record(f"disc/{key}", value)
        self.logger.record("disc/reward_mean", float(learned.mean()))
        return learned

    def _env_step(self, actions: np.ndarray):
        lengths = self._running_lengths + 1  # before the base class resets them at episode ends
        result = super()._env_step(actions)
        ended = np.logical_or(result[2], result[3])
        if ended.any() and not self.config.allow_variable_horizon and self.expert_horizon is not None:
            ended_lengths = lengths[ended]
            if np.any(ended_lengths != self.expert_horizon):
                raise VariableHorizonError(
                    f"a policy episode ended after {int(ended_lengths[ended_lengths != self.expert_horizon][0])} steps, "
                    f"but the demonstrations all have {self.expert_horizon}; GAIL's reward leaks information through "
                    "episode ends (termination bias, Kostrikov et al. 2019). Use a fixed-horizon env (e.g. "
                    "seals/CartPole-v0) or pass allow_variable_horizon=True, as imitation requires.")
        return result

    # ------------------------------------------------------------------ save / load
    def _trainables(self) -> dict[str, Any]:
        return {**super()._trainables(), "discriminator": self.discriminator, "disc_optimizer": self.disc_optimizer}

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        arrays = super()._extra_state_arrays(include_replay_buffer)
        if self.disc_input_rms is not None:
            arrays.update(self.disc_input_rms.state_arrays("disc_input_rms"))
        if self.expert_features is not None:
            # The expert pairs travel with the model, so a loaded agent can keep training.
            arrays["expert/features"] = self.expert_features
            arrays["expert/horizon"] = np.array(-1 if self.expert_horizon is None else self.expert_horizon)
        return arrays

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super()._load_extra_state_arrays(arrays)
        if self.disc_input_rms is not None:
            self.disc_input_rms.load_state_arrays("disc_input_rms", arrays)
        if self.expert_features is None and "expert/features" in arrays:
            features = arrays["expert/features"]
            with np.errstate(over="ignore", invalid="ignore"):
                as_float32 = features.astype(np.float32) if features.dtype.kind in "iuf" else None
            if features.ndim != 2 or features.shape[1] != self.disc_input_dim or as_float32 is None \
                    or not np.all(np.isfinite(as_float32)):
                raise ValueError(f"saved expert features have shape {features.shape} and dtype {features.dtype}, "
                                 f"expected finite float32 numbers of shape (n, {self.disc_input_dim})")
            horizon = arrays["expert/horizon"]
            if horizon.size != 1 or horizon.dtype.kind not in "iu":
                raise ValueError(f"saved expert/horizon must be one int, got {horizon.dtype} of shape {horizon.shape}")
            self.expert_features = as_float32
            horizon = int(horizon.reshape(-1)[0])
            self.expert_horizon = None if horizon < 0 else horizon

    def _after_load(self) -> None:
        super()._after_load()
        path = self.config.demonstrations_path
        if self.expert_features is not None or path is None:
            return  # the saved (or explicitly given) pairs: the path is not read
        if not os.path.isabs(path):
            self._missing_demonstrations = (
                f"the model file holds no expert pairs, only the relative demonstrations_path={path!r}, which "
                "is not resolved against the current directory (a file there may be another expert's)")
        elif Path(path).is_file():
            self.set_demonstrations(path)
        else:
            self._missing_demonstrations = f"no file at demonstrations_path={path!r}"


__all__: Sequence[str] = ("GAIL", "GAILConfig", "gail_reward", "discriminator_objective", "bernoulli_entropy",
                          "VariableHorizonError", "REWARD_FORMS")
