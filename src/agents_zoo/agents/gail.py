"""Generative Adversarial Imitation Learning (Ho & Ermon 2016) around any on-policy learner.

Over ~400 lines because it reads top to bottom as one algorithm: the config that resolves the
learner's settings, the discriminator and its update, the reward hook, the round loop, saving
both halves, and the two training plots; the objective itself is in ``core.adversarial``.

    demos = load_demonstrations("demos.npz")            # or agents-zoo expert train ... --demos
    agent = GAIL("seals/CartPole-v0", demonstrations=demos, seed=0)
    agent.learn(200_000); agent.evaluate(10)
    GAIL("Pendulum-v1", demonstrations=demos, learner="a2c", learner_kwargs={"n_steps": 32})

GAIL holds a *learner* (the generator) and a discriminator D(s, a) (the shared adversarial block
of :mod:`agents_zoo.core.adversarial`), as ``imitation``'s ``GAIL(demonstrations, venv,
gen_algo=PPO(...), reward_net=...)`` does. The learner is any registered on-policy agent (our
``ppo`` by default, ``a2c``, or a plugin's from the ``agents_zoo.agents`` entry points) whose
constructor takes ``reward_fn``: GAIL installs D's reward there and never touches the learner's
internals. Each round follows Algorithm 1 of the paper: the learner collects one rollout, hands
its transitions to the reward hook, where D takes ``n_disc_updates_per_round`` steps on expert
vs. policy batches and the rollout is relabelled with the updated D; then the learner updates.

Settings. ``learner`` names the agent and ``learner_kwargs`` its settings (its config's fields);
its own fields may also be given flat, next to GAIL's (``GAIL(env, n_steps=1024)``, ``--config
n_steps=1024``), as in earlier releases, whose saved files hold them so and still load. A flat
key is applied over ``learner_kwargs``. The settings GAIL shares with its learner (``n_envs``, the
policy's ``policy_hidden_sizes`` and ``activation``, ``detect_nonfinite``, ``compute_dtype``) are
GAIL's own fields. Unset learner settings take :data:`LEARNER_DEFAULTS` (for ``ppo``), then the
learner's own defaults; ``config.learner_kwargs`` holds all of them once the config is made, so
a saved model names every setting it was trained with.

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

Defaults. GAIL's learner defaults (:data:`LEARNER_DEFAULTS`) are the PPO of imitation's GAIL
tutorial (8 envs, gamma 0.95, 5 epochs, lr 4e-4) with its learning rate annealed linearly to 0
over the ``learn`` budget; D takes 8 steps of 1024 + 1024 samples per 16,384-step round. On
Pendulum-v1 (a -197 PPO expert, 60 episodes, 1M steps) the constant learning rate imitated and
then fell apart on some seeds (final 0.95, 0.43, 0.81 of the expert's return, random-normalized):
the discriminator separates a policy that has stopped exploring, and its saturated reward gives
the policy no way back. The annealed rate holds what was learned (0.88, 0.76, 0.84). RL-Zoo's
Pendulum PPO (4 x 1024 steps, gamma 0.9, 10 epochs, lr 1e-3, with or without gSDE) imitates
faster (-250 by 150k steps) and collapses on every seed; neither the logit reward, a gradient
penalty, an entropy bonus, fewer D steps, nor rewards from D before its update kept it
(``benchmarks/results/gail_tuning_Pendulum-v1.md``). On seals/CartPole-v0 the tutorial's PPO
reached 475 on only 3 of 5 seeds: the stalled seeds spin the pole through upright (the env never
terminates) while D keeps expert accuracy 1.0; RL-Zoo's CartPole PPO on small rounds (8 x 32
steps, 20 epochs, lr 1e-3, gamma 0.98, GAE 0.8) with one D step per round reaches 475 on 5 of 5
seeds (median 37k steps in the ``gail`` benchmark sweep, ``benchmarks/results/gail``). Rule of thumb: give
GAIL a learner that learns the env from its true reward without losing its exploration, anneal
its learning rate over the budget, and keep D to about one step per few hundred env steps.

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

Saved files hold the learner's variables and arrays under the learner's own names (``policy/...``,
``optimizer/...``, ``observation_rms/...``) beside ``discriminator/...``, ``disc_optimizer/...``,
``disc_input_rms/...`` and ``expert/...``: the names GAIL used when it was a PPO subclass, so
files of that layout load unchanged.

Termination bias: a reward that is always positive (or always negative) tells the policy to
prolong (or end) episodes whatever the expert did (Kostrikov et al. 2019, section 4.2). As in
``imitation``, variable-horizon episodes are refused unless ``allow_variable_horizon=True``;
use the fixed-horizon ``seals/...`` envs. The check reads the demonstrations' episode lengths
and every episode the policy finishes.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf
from gymnasium import spaces

from agents_zoo import registry
from agents_zoo.core import adversarial
from agents_zoo.core.adversarial import REWARD_FORMS, bernoulli_entropy, discriminator_objective, gail_reward
from agents_zoo.core.base import BaseAgent, loading_from_file
from agents_zoo.core.buffers import ReplayBuffer
from agents_zoo.core.callbacks import BaseCallback
from agents_zoo.core.cli_args import json_or_word
from agents_zoo.core.config import (AgentConfig, check_bool, check_choice, check_int, check_number, check_positive,
                                    field)
from agents_zoo.core.networks import preprocess_numpy
from agents_zoo.core.normalization import RunningMeanStd
from agents_zoo.core.optimizers import TorchStyleOptimizer
from agents_zoo.core.serialization import atomic_save
from agents_zoo.core.suggest import did_you_mean
from agents_zoo.demonstrations import Demonstrations, from_trajectories, load_demonstrations

DEFAULT_LEARNER = "ppo"
# GAIL's defaults for a learner's settings, under the user's learner_kwargs. Files saved before
# learner_kwargs existed hold every PPO setting of their release except the gSDE ones, which must
# therefore keep PPO's own defaults here (off) for those files to rebuild the policy they saved.
LEARNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 4e-4, "learning_rate_schedule": "linear", "gamma": 0.95, "n_epochs": 5, "batch_size": 64},
}
# The settings GAIL shares with its learner: GAIL's own fields, handed to the learner.
SHARED_SETTINGS = tuple(AgentConfig.field_names())


class VariableHorizonError(ValueError):
    """Episodes of different lengths, refused because GAIL's reward leaks through termination."""


def takes_reward_fn(agent_class: Any) -> bool:
    """Whether ``agent_class`` is an on-policy agent GAIL can drive: a :class:`BaseAgent` whose
    constructor takes ``reward_fn`` (the hook of ``agents_zoo.agents.onpolicy``) and whose config
    has ``n_steps`` (a rollout of ``n_steps * n_envs`` transitions is relabelled at a time)."""
    if not (isinstance(agent_class, type) and issubclass(agent_class, BaseAgent)):
        return False
    return ("reward_fn" in inspect.signature(agent_class.__init__).parameters
            and "n_steps" in agent_class.config_class.field_names())


def learner_class(name: Any) -> type[BaseAgent]:
    """The registered on-policy agent called ``name``, or one ``ValueError`` line naming those that fit."""
    def fitting() -> list[str]:
        names = []
        for candidate in registry.list_agents():
            try:
                if takes_reward_fn(registry.get_agent_class(candidate)):
                    names.append(candidate)
            except registry.AgentRegistryError:
                continue
        return names

    if not isinstance(name, str):
        raise ValueError(f"learner must be the name of a registered on-policy agent, got {name!r}")
    try:
        agent_class = registry.get_agent_class(name)
    except registry.UnknownAgentError:
        names = fitting()
        raise ValueError(f"learner must be a registered on-policy agent ({', '.join(names) or 'none installed'}), "
                         f"got {name!r}{did_you_mean(name, names)}") from None
    except registry.AgentRegistryError as exc:  # installed, but its plugin failed to import
        raise ValueError(f"learner {name!r}: {exc}") from None
    if not takes_reward_fn(agent_class):
        raise ValueError(f"learner {name!r} is not an on-policy agent whose constructor takes reward_fn; "
                         f"expected one of: {', '.join(fitting()) or 'none installed'}")
    return agent_class


# ----------------------------------------------------------------------------- config
@dataclasses.dataclass
class GAILConfig(AgentConfig):
    """GAIL settings: the learner (generator) by name with its settings, and the discriminator's."""

    n_envs: int = field(8, doc="number of environments stepped together (the learner's too)")
    learner: str = field(DEFAULT_LEARNER, doc="the generator: a registered on-policy agent (ppo, a2c or a plugin's) "
                                              "trained on D's reward")
    learner_kwargs: dict[str, Any] = field(default_factory=dict, doc="the learner's settings (its config fields), e.g. "
                                           "{\"n_steps\": 1024}; unset ones: GAIL's defaults for it (listed below), "
                                           "then its own; its fields may also be given flat")
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
    def from_dict(cls, values: dict[str, Any]) -> "GAILConfig":
        """As :meth:`AgentConfig.from_dict`; keys of the learner's config given flat go into ``learner_kwargs``."""
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__} expects a dict of settings, got {type(values).__name__}")
        own = cls.field_names()
        flat = {key: value for key, value in values.items() if key not in own}
        if not flat:
            return super().from_dict(values)
        name = values.get("learner", DEFAULT_LEARNER)
        learner_fields = [key for key in learner_class(name).config_class.field_names() if key not in SHARED_SETTINGS]
        for key in flat:
            if key not in learner_fields:
                known = own + learner_fields
                raise ValueError(f"unknown setting {key!r} for {cls.__name__} or its learner {name!r}"
                                 f"{did_you_mean(key, known)} Known settings: {', '.join(known)}")
        nested = values.get("learner_kwargs")
        merged = {**nested, **flat} if isinstance(nested, dict) else flat
        return super().from_dict({**{key: value for key, value in values.items() if key in own},
                                  "learner_kwargs": merged})

    @classmethod
    def build(cls, config: Any = None, **overrides: Any) -> "GAILConfig":
        # Another learner does not inherit the settings resolved for the previous one.
        if isinstance(config, cls) and overrides.get("learner", config.learner) != config.learner \
                and "learner_kwargs" not in overrides:
            config = {key: value for key, value in config.to_dict().items() if key != "learner_kwargs"}
        return super().build(config, **overrides)

    @classmethod
    def parse_cli_value(cls, key: str, text: str) -> Any:
        if key not in cls.field_names():
            # A learner setting given flat: typed by the default learner's config when it has the
            # key, else read as JSON (the learner's config checks it when the config is built).
            learner_config = learner_class(DEFAULT_LEARNER).config_class
            if key in learner_config.field_names():
                return learner_config.parse_cli_value(key, text)
            return json_or_word(key, text)
        value = super().parse_cli_value(key, text)
        if key == "demonstrations_path" and isinstance(value, str):
            # Relative to the directory the command runs in, as the agent would make it; so a
            # --resume repeating the same --config compares equal to the saved absolute path.
            value = os.path.abspath(value)
        return value

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any]]:
        """GAIL's fields, then the default learner's, which ``--config`` also takes flat."""
        rows = super().describe()
        defaults = cls().learner_kwargs
        for name, doc, _ in learner_class(DEFAULT_LEARNER).config_class.describe():
            if name not in SHARED_SETTINGS:
                rows.append((name, f"learner {DEFAULT_LEARNER}: {doc}", defaults[name]))
        return rows

    def learner_config(self) -> AgentConfig:
        """The learner's config: ``learner_kwargs`` over GAIL's defaults for it, with the shared settings."""
        return learner_class(self.learner).config_class.build(
            {**LEARNER_DEFAULTS.get(self.learner, {}), **self.learner_kwargs},
            **{name: getattr(self, name) for name in SHARED_SETTINGS})

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
        self._resolve_learner_kwargs()

    def _resolve_learner_kwargs(self) -> None:
        """Check the learner and its settings; keep every one of them in ``learner_kwargs``."""
        kwargs = self.learner_kwargs
        if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
            raise ValueError(f"learner_kwargs must be an object of the learner's settings, got {kwargs!r}")
        shared = [key for key in kwargs if key in SHARED_SETTINGS]
        if shared:
            raise ValueError(f"learner_kwargs sets {', '.join(shared)}, which GAIL shares with its learner; "
                             f"set {shared[0]}=... as a GAIL setting instead")
        learner_class(self.learner)  # its own error line, not one about its settings
        try:
            resolved = self.learner_config()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"learner_kwargs of learner {self.learner!r}: {exc}") from None
        self.learner_kwargs = {key: value for key, value in resolved.to_dict().items() if key not in SHARED_SETTINGS}


# ----------------------------------------------------------------------------- loss and reward
# ----------------------------------------------------------------------------- the agent
class _LearnerState:
    """A :class:`BaseAgent` attribute of GAIL that is its learner's own.

    The learner steps the env, so its step count, episodes, pending observations and random
    generator are GAIL's: ``save``, ``load``, callbacks and schedules read and write them through
    GAIL. Until the learner exists (while ``BaseAgent.__init__`` runs) GAIL holds them itself.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, agent: Any, owner: type | None = None) -> Any:
        if agent is None:
            return self
        learner = agent.__dict__.get("learner")
        return getattr(learner, self.name) if learner is not None else agent.__dict__[self.name]

    def __set__(self, agent: Any, value: Any) -> None:
        learner = agent.__dict__.get("learner")
        if learner is not None:
            setattr(learner, self.name, value)
        else:
            agent.__dict__[self.name] = value


class _RolloutEvents(BaseCallback):
    """Hands the learner's rollout and step events to GAIL's callbacks.

    GAIL's callbacks were set up with GAIL as their agent (a checkpoint saves GAIL, not the
    learner) and have had ``on_training_start``; only the events inside training pass through.
    """

    def __init__(self, gail: "GAIL", callbacks: BaseCallback):
        super().__init__()
        self.gail = gail
        self.callbacks = callbacks

    def on_rollout_start(self) -> None:
        self.gail._lengths_at_rollout_start = np.array(self.gail._running_lengths, copy=True)
        self.callbacks.on_rollout_start()

    def on_step(self) -> bool:
        return self.callbacks.on_step()

    def on_rollout_end(self) -> None:
        self.callbacks.on_rollout_end()


class GAIL(BaseAgent):
    name = "gail"
    config_class = GAILConfig
    config: GAILConfig
    checkpoint_between_rollouts_only = True  # its learners are on-policy

    num_timesteps = _LearnerState()
    _total_timesteps = _LearnerState()
    _last_obs = _LearnerState()
    _episode_returns = _LearnerState()
    _episode_lengths = _LearnerState()
    _running_returns = _LearnerState()
    _running_lengths = _LearnerState()
    rng = _LearnerState()
    LEARNER_STATE = ("num_timesteps", "_total_timesteps", "_last_obs", "_episode_returns", "_episode_lengths",
                     "_running_returns", "_running_lengths", "rng")

    def __init__(self, env: Any = None, config: Any = None, *, demonstrations: Any = None, **kwargs: Any):
        if "reward_fn" in kwargs:
            raise ValueError("GAIL computes its own reward (the discriminator's); reward_fn is for its learner alone")
        self._demonstrations_arg = demonstrations
        self._deterministic_ops = bool(kwargs.get("deterministic_ops", False))
        super().__init__(env, config, **kwargs)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.config
        self.learner = self._make_learner()
        # The learner's counters, episodes and random generator are GAIL's from now on (see
        # _LearnerState): the fresh ones BaseAgent.__init__ gave GAIL are dropped, and GAIL's logger
        # (its log_dir and verbosity) records the learner's statistics beside D's.
        for name in self.LEARNER_STATE:
            self.__dict__.pop(name, None)
        self.learner.logger = self.logger
        self._discrete_actions = isinstance(self.action_space, spaces.Discrete)
        self.disc_input_dim = self._feature_dim()
        self.discriminator = adversarial.build_mlp_discriminator(
            self.disc_input_dim, cfg.disc_hidden_sizes, activation=cfg.disc_activation, name="gail_discriminator")
        self.disc_optimizer = TorchStyleOptimizer(self.discriminator.trainable_variables, "adam", epsilon=1e-8)
        self.disc_input_rms = RunningMeanStd((self.disc_input_dim,)) if cfg.normalize_disc_input else None
        # imitation's gen_replay_buffer: the newest policy transitions, which D learns to tell from
        # the expert's. Each round adds the newest min(capacity, rollout) of the rollout's transitions,
        # flattened time-major, in ONE add: the buffer's "envs" are those rows (GAIL samples 1-step).
        rollout_size = self.learner.steps_per_iteration
        capacity = cfg.gen_replay_buffer_capacity or rollout_size
        self.gen_replay = ReplayBuffer(capacity, self.observation_space, self.action_space,
                                       n_envs=min(capacity, rollout_size))
        self._disc_update_graph = tf.function(self._disc_update)
        self._logits_graph = tf.function(lambda x: tf.reshape(self.discriminator(x), [-1]))
        self.last_rollout: dict[str, np.ndarray] = {}  # the newest rollout's transitions, flat, for plots
        self._lengths_at_rollout_start = np.zeros(self.n_envs, dtype=np.int64)
        self.expert_features: np.ndarray | None = None
        self.expert_horizon: int | None = None
        self.expert_return: float | None = None  # the demonstrations' mean episode return, for plots (not saved)
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

    def _make_learner(self) -> BaseAgent:
        """The generator, on GAIL's env (or spaces), seed and settings, with D's reward as its reward_fn."""
        learner_cls = learner_class(self.config.learner)
        learner = learner_cls(self.env, self.config.learner_config(), seed=self.seed, reward_fn=self._discriminator_reward,
                              deterministic_ops=self._deterministic_ops, observation_space=self.observation_space,
                              action_space=self.action_space)
        clashing = sorted(set(learner._trainables()) & {"discriminator", "disc_optimizer"})
        if clashing:
            raise ValueError(f"learner {self.config.learner!r} saves variables under {', '.join(clashing)}, "
                             "a name GAIL's discriminator uses; rename them in the learner")
        return learner

    def _after_set_env(self) -> None:
        self.learner.set_env(self.env)  # the learner steps GAIL's env

    @property
    def policy(self) -> Any:
        """The learner's policy network (what acts)."""
        return self.learner.policy

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
        self.expert_return = float(demonstrations.episode_returns.mean())
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

    def _train_discriminator(self) -> tuple[dict[str, float], np.ndarray]:
        """``n_disc_updates_per_round`` steps on expert vs. replayed policy batches; returns the mean
        statistics and the last step's expert batch (raw features)."""
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
        return dict(zip(("loss", "expert_acc", "gen_acc", "grad_penalty"), means.tolist())), expert[-1]

    def _discriminator_reward(self, observations: np.ndarray, actions: np.ndarray, next_observations: np.ndarray,
                              dones: np.ndarray) -> np.ndarray:
        """The learner's ``reward_fn``: train D on this rollout (Ho & Ermon 2016, Algorithm 1,
        step 4), then relabel the rollout with the updated D. Arrays are flat, time-major."""
        assert self.expert_features is not None
        self._check_policy_horizon(dones)
        self.last_rollout = {"observations": observations, "actions": actions, "next_observations": next_observations}
        newest = self.gen_replay.n_envs
        self.gen_replay.add(observations[-newest:], actions[-newest:], np.zeros(newest, np.float32),
                            next_observations[-newest:], np.zeros(newest, np.float32), dones[-newest:])
        policy_features = self._features(observations, actions)
        stats, expert_batch = self._train_discriminator()
        logits = self._logits_graph(tf.constant(self._normalized(np.concatenate([policy_features, expert_batch]))))
        rewards = gail_reward(logits, self.config.reward_form).numpy()
        learned, on_expert = rewards[:len(policy_features)], rewards[len(policy_features):]
        for key, value in stats.items():
            self.logger.record(f"disc/{key}", value)
        # D's reward on this rollout's pairs and on expert pairs: their gap is what the learner chases.
        self.logger.record("disc/reward_mean", float(learned.mean()))
        self.logger.record("disc/reward_expert", float(on_expert.mean()))
        return learned

    def _check_policy_horizon(self, dones: np.ndarray) -> None:
        """Refuse a policy episode whose length differs from the demonstrations' (module docstring)."""
        if self.config.allow_variable_horizon or self.expert_horizon is None:
            return
        lengths = self._lengths_at_rollout_start.copy()
        for step_dones in np.asarray(dones, dtype=bool).reshape(-1, self.n_envs):
            lengths += 1
            wrong = step_dones & (lengths != self.expert_horizon)
            if wrong.any():
                raise VariableHorizonError(
                    f"a policy episode ended after {int(lengths[wrong][0])} steps, but the demonstrations all have "
                    f"{self.expert_horizon}; GAIL's reward leaks information through episode ends (termination "
                    "bias, Kostrikov et al. 2019). Use a fixed-horizon env (e.g. seals/CartPole-v0) or pass "
                    "allow_variable_horizon=True, as imitation requires.")
            lengths[step_dones] = 0

    # ------------------------------------------------------------------ training and acting
    def _reset_env(self) -> None:
        # The learner resets the env it steps (and updates its observation statistics) when its
        # learn() finds no pending observations; GAIL's BaseAgent.learn stores this None there.
        return None

    @property
    def steps_per_iteration(self) -> int:
        return self.learner.steps_per_iteration

    def _learn(self, callback: BaseCallback, log_interval: int) -> None:
        if self.expert_features is None:
            where = f": {self._missing_demonstrations}" if self._missing_demonstrations else ""
            raise RuntimeError(f"GAIL has no demonstrations{where}; pass demonstrations= (a .npz path, "
                               "Demonstrations or imitation trajectories), call set_demonstrations() "
                               "or set demonstrations_path")
        # BaseAgent.learn set the step counts (the learner's, see _LearnerState); the learner
        # continues them up to the same total, so its schedules run over GAIL's budget.
        self.learner.learn(self._total_timesteps - self.num_timesteps, callback=_RolloutEvents(self, callback),
                           log_interval=log_interval, reset_num_timesteps=False)

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.learner.predict(observations, deterministic=deterministic)[0]

    # ------------------------------------------------------------------ pictures
    def save_training_plots(self, folder: str | os.PathLike, evaluations: Sequence[tuple[float, float, float]] = (),
                            ) -> tuple[Path, Path]:
        """Write two PNGs of the training logged so far (matplotlib's Agg backend, atomic writes).

        ``gail_return.png``: the test return, ``evaluations`` as (env steps, mean, std) rows (what
        :class:`~agents_zoo.core.callbacks.EvalCallback` keeps in ``curve``), and the env return of
        the training episodes, against env steps, with the expert's. ``gail_discriminator.png``:
        D's reward on each rollout's pairs and on expert pairs, and D's accuracy on each, per round.
        """
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        history = self.logger.history

        def series(key: str) -> tuple[list[float], list[float]]:
            rows = [(row["time/total_timesteps"], row[key]) for row in history if key in row]
            return [step for step, _ in rows], [value for _, value in rows]

        def save(figure: Any, name: str) -> Path:
            path = folder / name
            figure.tight_layout()
            atomic_save(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
            pyplot.close(figure)
            return path

        figure, axis = pyplot.subplots(figsize=(7, 4))
        if evaluations:
            steps, means, stds = (np.array(column, dtype=np.float64) for column in zip(*evaluations))
            axis.plot(steps, means, marker="o", label="evaluation (deterministic)")
            axis.fill_between(steps, means - stds, means + stds, alpha=0.2)
        axis.plot(*series("rollout/ep_rew_mean"), label="training episodes (last 100)", alpha=0.7)
        if self.expert_return is not None:
            axis.axhline(self.expert_return, color="black", linestyle="--", label="expert (demonstrations)")
        axis.set(xlabel="env steps", ylabel="episode return (env reward)", title=f"GAIL on {self.env_id}: return")
        axis.grid(alpha=0.3)
        axis.legend()
        returns = save(figure, "gail_return.png")

        figure, (rewards, accuracy) = pyplot.subplots(1, 2, figsize=(11, 4))
        rewards.plot(*series("disc/reward_mean"), label="policy pairs (the rollout)")
        rewards.plot(*series("disc/reward_expert"), label="expert pairs")
        rewards.set(xlabel="env steps", ylabel=f"mean reward ({self.config.reward_form} form)",
                    title="discriminator reward")
        accuracy.plot(*series("disc/expert_acc"), label="on expert pairs")
        accuracy.plot(*series("disc/gen_acc"), label="on policy pairs")
        accuracy.set(xlabel="env steps", ylabel="accuracy", ylim=(-0.02, 1.02), title="discriminator accuracy")
        for axis in (rewards, accuracy):
            axis.grid(alpha=0.3)
            axis.legend()
        return returns, save(figure, "gail_discriminator.png")

    # ------------------------------------------------------------------ save / load
    def _trainables(self) -> dict[str, Any]:
        return {**self.learner._trainables(), "discriminator": self.discriminator, "disc_optimizer": self.disc_optimizer}

    def _upgrade_saved_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[override]
        # The learner's arrays carry its own names, so its upgrades of older layouts apply as they are.
        return self.learner._upgrade_saved_arrays(arrays)

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        arrays = self.learner._extra_state_arrays(include_replay_buffer)
        if self.disc_input_rms is not None:
            arrays.update(self.disc_input_rms.state_arrays("disc_input_rms"))
        if self.expert_features is not None:
            # The expert pairs travel with the model, so a loaded agent can keep training.
            arrays["expert/features"] = self.expert_features
            arrays["expert/horizon"] = np.array(-1 if self.expert_horizon is None else self.expert_horizon)
        return arrays

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.learner._load_extra_state_arrays(arrays)
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
        self.learner._after_load()
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
                          "VariableHorizonError", "REWARD_FORMS", "LEARNER_DEFAULTS", "learner_class")
