"""The base agent: an SB3-like facade shared by every agent.

One class over ~400 lines on purpose: it is the one contract an agent (and a plugin) implements,
and its parts (learn loop, checkpoints, resume, save/load, evaluation) share the agent's state.

    agent = agents_zoo.make("ppo", "CartPole-v1", seed=0)
    agent.learn(100_000, progress_bar=True)
    agent.save("ppo.zip"); agent = PPO.load("ppo.zip")

Subclasses implement ``_setup`` (build networks and optimizers), ``_learn`` (the training loop,
stepping through ``_env_step`` and calling ``callback.on_step()``), ``_predict`` (a batch of
actions) and ``_trainables`` (the Keras models and optimizers whose variables are saved).
"""

from __future__ import annotations

import collections
import contextvars
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from agents_zoo.core import callbacks as callbacks_module
from agents_zoo.core import env_state, saved_variables
from agents_zoo.core.config import AgentConfig
from agents_zoo.core.envs import (
    FINAL_OBSERVATION_KEY,
    UnregisteredFileEnvIdError,
    check_file_env_id,
    check_finite,
    env_id_of,
    fixed_n_envs,
    make_vec_env,
)
from agents_zoo.core.episodes import run_episodes
from agents_zoo.core.load_limits import array_elements, parameter_budget
from agents_zoo.core.logger import Logger
from agents_zoo.core.restore_checks import ENV_STATE_PREFIXES, check_finite_arrays, check_restored_arrays
from agents_zoo.core.seeding import derive_seed, seed_everything
from agents_zoo.core.serialization import ArchiveError, load_archive, save_archive
from agents_zoo.core.spaces import check_space, space_from_json, space_to_json


def action_space_support() -> dict[str, tuple[str, ...]]:
    """Registered agent name -> the action space types its class declares (plugins included).

    Read from the registry, for error messages that point users to an agent that fits; agents
    made by a factory without an ``action_spaces`` attribute are left out.
    """
    from agents_zoo import registry

    support = {}
    for name in registry.list_agents():
        kinds = getattr(registry.get_agent_class(name), "action_spaces", None)
        if isinstance(kinds, tuple):
            support[name] = tuple(kind.__name__ for kind in kinds)
    return support


@dataclass
class EvalResult:
    mean: float
    std: float
    returns: np.ndarray
    lengths: np.ndarray

    def __iter__(self):  # allows ``mean, std = agent.evaluate(...)`` like SB3's evaluate_policy
        return iter((self.mean, self.std))


class BaseAgent:
    name: ClassVar[str] = "base"
    config_class: ClassVar[type[AgentConfig]] = AgentConfig
    observation_spaces: ClassVar[tuple[type, ...]] = (spaces.Box, spaces.Discrete)
    action_spaces: ClassVar[tuple[type, ...]] = (spaces.Discrete, spaces.Box)
    # On-policy agents hold a half-filled rollout between updates that checkpoints do not
    # store; they checkpoint only at rollout ends (``callback.on_rollout_end()``).
    checkpoint_between_rollouts_only: ClassVar[bool] = False

    def __init__(
        self,
        env: Any = None,
        config: AgentConfig | dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        verbose: int = 0,
        log_dir: str | Path | None = None,
        log_formats: tuple[str, ...] | None = None,
        deterministic_ops: bool = False,
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        **overrides: Any,
    ):
        ready_n_envs = fixed_n_envs(env)
        n_envs_given = "n_envs" in overrides or (isinstance(config, dict) and "n_envs" in config)
        if ready_n_envs is not None and not n_envs_given:
            # A ready env says how many envs there are; an n_envs given with it must agree (make_vec_env).
            overrides["n_envs"] = ready_n_envs
        self.config = self.config_class.build(config, **overrides)
        self.seed = seed
        self.verbose = verbose
        self.rng = seed_everything(seed, deterministic_ops=deterministic_ops)
        self.env_id = env_id_of(env)
        self.env: VectorEnv | None = None
        if env is not None:
            self.env = make_vec_env(env, self.config.n_envs, seed)
            # A factory or an instance has no id of its own; the env it made has (a saved agent keeps it).
            self.env_id = self.env_id or env_id_of(self.env)
            observation_space = self.env.single_observation_space
            action_space = self.env.single_action_space
        elif observation_space is None or action_space is None:
            raise ValueError(f"{type(self).__name__} needs an env, or both observation_space and action_space")
        check_space(self.name, "observation", observation_space, self.observation_spaces)
        check_space(self.name, "action", action_space, self.action_spaces,
                    lambda: {k: v for k, v in action_space_support().items() if k != self.name})
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_timesteps = 0
        self._total_timesteps = 0
        self._last_obs: np.ndarray | None = None
        self._episode_returns: collections.deque[float] = collections.deque(maxlen=100)
        self._episode_lengths: collections.deque[int] = collections.deque(maxlen=100)
        self._running_returns = np.zeros(self.config.n_envs)
        self._running_lengths = np.zeros(self.config.n_envs, dtype=np.int64)
        self._eval_env: VectorEnv | None = None
        formats = log_formats or (("stdout",) if verbose else ())
        if log_dir is not None and log_formats is None:
            formats = (*formats, "csv", "tensorboard")
        self.logger = Logger(log_dir, formats)
        self._setup()

    # ------------------------------------------------------------------ subclass hooks
    def _setup(self) -> None:
        """Build networks, optimizers and buffers."""

    def _learn(self, callback: callbacks_module.BaseCallback, log_interval: int) -> None:
        raise NotImplementedError

    def _predict(self, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def _trainables(self) -> dict[str, Any]:
        """Keras models/optimizers (anything with ``.variables``), saved as ``<key>/<variable name>``
        (``core.saved_variables``); the keys must differ from the first part of every other array's name."""
        return {}

    def _extra_state_arrays(self, include_replay_buffer: bool) -> dict[str, np.ndarray]:
        """Other arrays to save (normalization statistics, replay buffer, ...)."""
        return {}

    def _load_extra_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    @classmethod
    def _upgrade_saved_arrays(cls, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rewrite arrays saved by an older layout of this agent into the current one (default: as is).

        Runs before the variables are assigned; a trainable whose arrays it leaves positional
        (``<key>/000``, ...) is read by position (``core.saved_variables.restore``)."""
        return arrays

    def _after_load(self) -> None:
        """Refresh derived state (e.g. NumPy copies of the policy) after weights were loaded."""

    # ------------------------------------------------------------------ facade
    @property
    def n_envs(self) -> int:
        return self.config.n_envs

    @property
    def steps_per_iteration(self) -> int:
        """Env steps the training loop takes between two looks at the budget (one vector step here;
        a rollout of ``n_steps`` vector steps for on-policy agents, ``train_freq`` for DQN)."""
        return self.n_envs

    def planned_steps(self, total_timesteps: int) -> int:
        """The env steps ``learn(total_timesteps)`` takes unless a callback stops it: whole
        iterations, so ``total_timesteps`` rounded up to a multiple of ``steps_per_iteration``
        (SB3's agents too finish the rollout they are in). A continued run (``reset_num_timesteps=False``)
        takes as many, from a step count that a checkpoint or earlier ``learn`` left on an iteration's end."""
        unit = self.steps_per_iteration
        return -(-max(int(total_timesteps), 0) // unit) * unit

    @property
    def progress_remaining(self) -> float:
        """1 at the start of ``learn`` and 0 at its end, for linear schedules (as in SB3)."""
        if self._total_timesteps <= 0:
            return 1.0
        return max(0.0, 1.0 - self.num_timesteps / self._total_timesteps)

    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        progress_bar: bool = False,
        log_interval: int = 1,
        reset_num_timesteps: bool = True,
        checkpoint_every: int | None = None,
        checkpoint_path: str | Path | None = None,
        checkpoint_replay_buffer: bool = False,
    ) -> "BaseAgent":
        """Train for ``total_timesteps`` env steps (over all envs).

        With ``reset_num_timesteps=False`` training continues the step count (and schedules)
        of an earlier or resumed run. ``checkpoint_every`` writes a resumable checkpoint to
        ``checkpoint_path`` atomically every that many steps and at the end (with the replay
        buffer too if ``checkpoint_replay_buffer``: an exact resume for off-policy agents).
        """
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)) or total_timesteps < 1:
            raise ValueError(f"total_timesteps must be a positive int, got {total_timesteps!r}")
        if self.env is None:
            raise RuntimeError(f"{self.name} has no environment to learn from; pass env= to the constructor or load()")
        if reset_num_timesteps:
            self.num_timesteps = 0
            self._total_timesteps = int(total_timesteps)
        else:
            self._total_timesteps = self.num_timesteps + int(total_timesteps)
        parts = [callbacks_module.as_callback(callback)]
        if progress_bar:
            parts.append(callbacks_module.ProgressBarCallback())
        if checkpoint_every is not None:
            if checkpoint_path is None:
                raise ValueError("checkpoint_every needs a checkpoint_path to write to")
            parts.append(callbacks_module.CheckpointCallback(checkpoint_path, checkpoint_every,
                                                             include_replay_buffer=checkpoint_replay_buffer))
        callback_list = callbacks_module.CallbackList(parts)
        callback_list.init_callback(self)
        if self._last_obs is None:
            self._last_obs = self._reset_env()
        self._start_time = time.perf_counter()
        self._start_timesteps = self.num_timesteps
        callback_list.on_training_start(int(total_timesteps))
        try:
            self._learn(callback_list, log_interval)
        finally:
            callback_list.on_training_end()
        return self

    def set_env(self, env: Any) -> None:
        """Train on ``env`` from now on (SB3's ``set_env``): the same spaces and number of envs.

        ``env`` is anything the constructor takes. The weights, optimizer, normalization
        statistics and replay buffer are kept; the next ``learn()`` starts new episodes (SB3's
        default, ``force_reset=True``). A different number of envs takes ``load(path, env=...)``.
        """
        count = fixed_n_envs(env)
        if count is not None and count != self.n_envs:
            raise ValueError(f"the env has {count} envs but {self.name} was built for n_envs={self.n_envs}; "
                             "save() and load(path, env=...) to change the number of envs")
        vec = make_vec_env(env, self.n_envs)
        try:
            self._check_env_spaces(vec, env, use="train it on")
            self._check_training_env(vec)
        except (TypeError, ValueError):
            if count is None:
                vec.close()  # built here from an id or a factory: nobody else holds it
            raise
        self.env = vec
        new_env_id = env_id_of(env) or env_id_of(vec)
        if new_env_id:
            self.env_id = new_env_id
            self._eval_env = None  # evaluate() without env= plays the new id
        self._last_obs = None
        self._after_set_env()

    def get_env(self) -> VectorEnv | None:
        """The vector env the agent trains on (None for a model loaded without one)."""
        return self.env

    def _check_training_env(self, vec: VectorEnv) -> None:
        """Refuse an env this agent cannot step (raise TypeError or ValueError); any by default."""

    def _after_set_env(self) -> None:
        """Rebuild what depends on the training env after ``set_env`` (e.g. a replay buffer)."""

    def predict(self, observation: Any, state: None = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        """Actions for one observation or a batch; returns ``(actions, None)``.

        The signature is SB3's, whose ``state`` and ``episode_start`` serve recurrent policies:
        ours have no state (None in, None out), and tools written for SB3's models, such as its
        ``evaluate_policy``, call ours too.
        """
        if state is not None:
            hint = f"; pass deterministic={state!r} by name" if isinstance(state, (bool, np.bool_)) else ""
            raise TypeError(f"predict's second argument is the recurrent state, as in SB3, and {self.name} has "
                            f"none: it must be None, got {state!r}{hint}")
        obs = np.asarray(observation)
        single = self._is_single_observation(obs)
        batch = obs[None] if single else obs
        actions = self._predict(batch, deterministic)
        return (actions[0] if single else actions), None

    def _is_single_observation(self, obs: np.ndarray) -> bool:
        space = self.observation_space
        shape = () if isinstance(space, spaces.Discrete) else space.shape
        if obs.shape == shape:
            return True
        if obs.shape[1:] == shape:
            return False
        raise ValueError(f"observation of shape {obs.shape} does not match the space {space} (or a batch of it)")

    # Episodes of an env without a time limit end here when the policy never finishes them
    # (a greedy policy can walk in circles on CliffWalking forever).
    EVALUATION_STEP_LIMIT = 10_000

    def evaluate(self, n_episodes: int = 10, deterministic: bool = True, env: Any = None,
                 seed: int | None = None, render: bool = False, max_episode_steps: int | None = None) -> EvalResult:
        """Mean and std of the undiscounted return over ``n_episodes`` full episodes.

        An episode of an env without a time limit is cut after ``max_episode_steps`` (default
        :attr:`EVALUATION_STEP_LIMIT`), as a ``TimeLimit`` would.
        """
        if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
            raise ValueError(f"n_episodes must be a positive int, got {n_episodes!r}")
        limit = self.EVALUATION_STEP_LIMIT if max_episode_steps is None else max_episode_steps
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")
        eval_env = self._evaluation_env(env, n_episodes, render)
        self._check_env_spaces(eval_env, env)
        episodes = run_episodes(eval_env, lambda obs: self._predict(obs, deterministic), n_episodes,
                                seed=derive_seed(self.seed if seed is None else seed, 7919), max_episode_steps=limit)
        if env is not None and eval_env is not env:
            eval_env.close()
        returns = np.array([episode.episode_return for episode in episodes], dtype=np.float64)
        return EvalResult(float(returns.mean()), float(returns.std()), returns,
                          np.array([episode.length for episode in episodes], dtype=np.int64))

    def _check_env_spaces(self, vec: VectorEnv, env: Any, use: str = "evaluate it on") -> None:
        """An env given for evaluation (or further training) must have the spaces the model was trained on."""
        for role, mine, theirs in (("observation", self.observation_space, vec.single_observation_space),
                                   ("action", self.action_space, vec.single_action_space)):
            if mine != theirs:
                name = env if isinstance(env, str) else type(getattr(vec, "unwrapped", vec)).__name__
                raise ValueError(f"{self.name} was trained on {role} space {mine}, but env {name!r} has {theirs}; "
                                 f"{use} an env with the same spaces")

    def _evaluation_env(self, env: Any, n_episodes: int, render: bool) -> VectorEnv:
        n = min(n_episodes, 8)
        if env is not None:
            return env if isinstance(env, VectorEnv) else make_vec_env(env, 1 if isinstance(env, gym.Env) else n)
        if self.env_id is None:
            raise ValueError(f"{self.name} does not know which env to evaluate on; pass env=")
        if render:
            return make_vec_env(self.env_id, 1, render_mode="human")
        if self._eval_env is None or self._eval_env.num_envs != n:
            self._eval_env = make_vec_env(self.env_id, n)
        return self._eval_env

    # ------------------------------------------------------------------ env stepping shared by all agents
    def _reset_env(self) -> np.ndarray:
        assert self.env is not None
        # A fresh or resumed run: seed from (seed, step count) so resumed runs stay reproducible.
        obs, _ = self.env.reset(seed=derive_seed(self.seed, self.num_timesteps) if self.num_timesteps else self.seed)
        self._running_returns[:] = 0.0
        self._running_lengths[:] = 0
        return np.asarray(obs)

    def _env_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Step all envs; returns (next_obs, rewards, terminated, truncated, {env index: final obs}).

        ``next_obs`` already holds the first observation of a new episode where one ended
        (gymnasium's autoreset); the last observation of the ended episode is in the dict.
        """
        assert self.env is not None
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        self.num_timesteps += self.n_envs
        if self.config.detect_nonfinite:
            check_finite("observation", obs, self.num_timesteps)
            check_finite("reward", rewards, self.num_timesteps)
        self._running_returns += rewards
        self._running_lengths += 1
        final_observations: dict[int, np.ndarray] = {}
        done = np.logical_or(terminated, truncated)
        if done.any():
            final_obs = infos.get(FINAL_OBSERVATION_KEY)
            for i in np.flatnonzero(done):
                self._episode_returns.append(float(self._running_returns[i]))
                self._episode_lengths.append(int(self._running_lengths[i]))
                self._running_returns[i] = 0.0
                self._running_lengths[i] = 0
                if final_obs is not None:
                    final_observations[int(i)] = np.asarray(final_obs[i])
        return np.asarray(obs), np.asarray(rewards, dtype=np.float32), np.asarray(terminated), np.asarray(truncated), final_observations

    def _record_rollout_stats(self) -> None:
        if self._episode_returns:
            self.logger.record("rollout/ep_rew_mean", np.mean(self._episode_returns))
            self.logger.record("rollout/ep_len_mean", np.mean(self._episode_lengths))
        elapsed = max(time.perf_counter() - getattr(self, "_start_time", time.perf_counter()), 1e-9)
        self.logger.record("time/fps", (self.num_timesteps - getattr(self, "_start_timesteps", 0)) / elapsed)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, include_replay_buffer: bool = False, include_env_state: bool = True) -> Path:
        """Write a zip of JSON config + weights + optimizer/RNG state, atomically; never pickled.

        Variables are stored by name, ``<trainable>/<attribute path>`` (``core.saved_variables``).
        With ``include_env_state`` the envs' current episodes are stored too where the env is
        plain data (see ``core.env_state``), so ``load(path, env=...)`` continues them exactly.
        """
        arrays: dict[str, np.ndarray] = {}
        for prefix, obj in self._trainables().items():
            arrays.update(saved_variables.variables_to_arrays(prefix, obj))
        arrays.update(self._extra_state_arrays(include_replay_buffer))
        config = {
            "agent": self.name,
            "config": self.config.to_dict(),
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "env_id": self.env_id,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "total_timesteps": self._total_timesteps,
            "rng_state": self.rng.bit_generator.state,
            "episode_returns": list(self._episode_returns),
            "episode_lengths": list(self._episode_lengths),
            "env_state": None,
        }
        if include_env_state and self.env is not None and self._last_obs is not None:
            try:
                config["env_state"], env_arrays = env_state.snapshot(self.env)
                arrays.update(env_arrays)
                arrays["episode_state/last_obs"] = self._last_obs
                arrays["episode_state/running_returns"] = self._running_returns
                arrays["episode_state/running_lengths"] = self._running_lengths
            except env_state.NotSnapshotable as exc:
                config["env_state_unavailable"] = str(exc)
        return save_archive(path, kind=f"agent/{self.name}", config=config, arrays=arrays,
                            metadata={saved_variables.LAYOUT_KEY: saved_variables.NAMES})

    def _restore_env_state(self, saved: dict[str, Any], arrays: dict[str, np.ndarray],
                           source: str = "the checkpoint") -> None:
        assert self.env is not None
        try:
            # Episode state is checked here, not with the other arrays: a NaN in it costs the
            # episodes (fresh ones start, as for any snapshot refused below), not the checkpoint.
            check_finite_arrays({name: value for name, value in arrays.items()
                                 if name.startswith(ENV_STATE_PREFIXES)}, source, skip_prefixes=())
            last_obs = arrays["episode_state/last_obs"]
            if last_obs.shape != (self.n_envs, *self._last_obs_template()) or last_obs.dtype.kind not in "biuf":
                raise ValueError(f"saved observations have shape {last_obs.shape} and dtype {last_obs.dtype} "
                                 f"for {self.n_envs} envs")
            running_returns = arrays["episode_state/running_returns"]
            running_lengths = arrays["episode_state/running_lengths"]
            if running_returns.shape != (self.n_envs,) or running_lengths.shape != (self.n_envs,) \
                    or running_lengths.dtype.kind not in "iu" or (running_lengths < 0).any():
                raise ValueError(f"saved episode returns and lengths have shapes {running_returns.shape} and "
                                 f"{running_lengths.shape}; expected non-negative lengths of ({self.n_envs},)")
            env_state.restore(self.env, saved["env_state"], arrays)
            self._last_obs = last_obs
            self._running_returns = running_returns.astype(np.float64)
            self._running_lengths = running_lengths.astype(np.int64)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError) as exc:
            # ArithmeticError: a number in the snapshot beyond what the env's field can hold
            warnings.warn(f"could not restore the envs' episodes from the checkpoint ({exc}); "
                          "training continues with fresh episodes", stacklevel=3)
            self._last_obs = None

    def _last_obs_template(self) -> tuple[int, ...]:
        return () if isinstance(self.observation_space, spaces.Discrete) else self.observation_space.shape

    @classmethod
    def load(cls, path: str | Path, env: Any = None, **kwargs: Any) -> "BaseAgent":
        """Rebuild an agent from ``save``; with ``env`` it can keep learning (resume).

        Everything in the file is checked before it is used, and a file that fails any check is
        refused with an ``ArchiveError`` naming it: the manifest (``load_archive``), the saved
        config and counters (``_check_saved_state``, the config dataclass), the spaces, and every
        array (``core.restore_checks``: finite floats, a replay buffer that fits the spaces) before
        the networks are built and the arrays assigned. Variables are matched by name, or by
        position in files of earlier releases (``core.saved_variables``).
        """
        archive = load_archive(path, expected_kind="agent" if cls.name == "base" else f"agent/{cls.name}")
        source = str(path)
        saved = archive.config
        if not isinstance(saved.get("config"), dict):
            raise ArchiveError(f"{source!r}: config must be an object, got {type(saved.get('config')).__name__}")
        # The kind (agent/<name>) picked the loader; the config must be that agent's.
        name = archive.kind.split("/", 1)[1] if "/" in archive.kind else None
        if saved.get("agent") != name:
            raise ArchiveError(f"{source!r} holds {archive.kind!r} but its config names agent {saved.get('agent')!r}; "
                               "expected the same agent")
        agent_cls = cls
        if cls.name == "base":
            from agents_zoo.registry import AgentRegistryError, get_agent_class

            try:
                agent_cls = get_agent_class(name)
            except AgentRegistryError as exc:
                raise ArchiveError(f"{source!r}: {exc}") from None
        _check_saved_state(saved, source)
        try:
            config = agent_cls.config_class.from_dict(saved["config"])
            observation_space = space_from_json(saved.get("observation_space"))
            action_space = space_from_json(saved.get("action_space"))
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"{source!r}: invalid saved config: {exc}") from None
        # The arrays are checked as user input before anything is built from the file or assigned.
        check_restored_arrays(archive.arrays, observation_space, action_space, source)
        ready_n_envs = fixed_n_envs(env)
        if ready_n_envs is not None:
            config = config.replace(n_envs=ready_n_envs)
        env_id = None
        if env is None and saved.get("env_id"):
            # The saved id is used later to make eval envs: it goes through the check for ids
            # read from files (never a module to import). An id whose package is not installed
            # only loses evaluation without env=; the model still predicts.
            try:
                env_id = check_file_env_id(saved["env_id"], path)
            except UnregisteredFileEnvIdError as exc:
                warnings.warn(f"{exc}; evaluate() needs env= for this model", stacklevel=2)
        seed = kwargs.pop("seed", saved.get("seed"))
        # The networks are built from the saved config before the weights are assigned: they may
        # not declare more parameters than the file holds arrays (core.load_limits). Whatever
        # else building from this config fails with is reported as this file's problem.
        token = _LOADING_FROM.set(source)
        try:
            with parameter_budget(array_elements(archive.arrays), source):
                agent = agent_cls(env, config, seed=seed, observation_space=observation_space,
                                  action_space=action_space, **kwargs)
        except ArchiveError:
            raise
        except _out_of_memory_errors() as exc:
            raise ArchiveError(f"{source!r}: its config ({agent_cls.name}) asks for more memory than this "
                               f"machine has ({type(exc).__name__})") from None
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ArchiveError(f"{source!r}: cannot rebuild {agent_cls.name} from its saved config: {exc}") from None
        finally:
            _LOADING_FROM.reset(token)
        if env is not None:
            _check_same_space("observation", observation_space, agent.observation_space, source)
            _check_same_space("action", action_space, agent.action_space, source)
        elif env_id is not None:
            agent.env_id = env_id
        try:
            arrays = agent._upgrade_saved_arrays(dict(archive.arrays))
            saved_variables.restore(agent._trainables(), arrays)
            agent._load_extra_state_arrays(arrays)
        except ArchiveError:
            raise
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            # IndexError, TypeError: an array of another rank than the restore code indexes
            raise ArchiveError(f"{source!r}: saved weights do not fit {agent_cls.name}: {exc}") from None
        agent.num_timesteps = int(saved.get("num_timesteps", 0))
        agent._total_timesteps = int(saved.get("total_timesteps", 0))
        if isinstance(saved.get("rng_state"), dict):
            try:
                agent.rng.bit_generator.state = saved["rng_state"]
            except (TypeError, ValueError, KeyError, ArithmeticError) as exc:
                raise ArchiveError(f"{source!r}: invalid RNG state: {exc}") from None
        agent._episode_returns.extend(float(x) for x in saved.get("episode_returns", []))
        agent._episode_lengths.extend(int(x) for x in saved.get("episode_lengths", []))
        if agent.env is not None and isinstance(saved.get("env_state"), dict):
            agent._restore_env_state(saved, archive.arrays, source)
        agent._after_load()
        return agent


# The file being loaded while ``BaseAgent.load`` builds the agent (else None): an agent whose
# setup would read other files named in its config (GAIL's demonstrations) leaves that to the
# loaded state, so a file in the current directory never replaces what the model saved.
_LOADING_FROM: contextvars.ContextVar[str | None] = contextvars.ContextVar("agents_zoo_loading_from", default=None)


def loading_from_file() -> str | None:
    """The path ``BaseAgent.load`` is building an agent from, or None outside a load."""
    return _LOADING_FROM.get()


def _out_of_memory_errors() -> tuple[type[BaseException], ...]:
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is None:
        return (MemoryError,)
    return (MemoryError, tensorflow.errors.ResourceExhaustedError)


_MAX_COUNT = 2**63 - 1  # counters end up in int64 arrays


def _check_saved_state(saved: dict[str, Any], source: str) -> None:
    """The manifest fields ``load`` reads besides the config: counters, seed, episode statistics.

    Each must be of the type ``save`` writes, and numbers finite and within int64, so that a
    crafted value fails here, naming the file and the field, not later as an OverflowError or
    TypeError from ``int()``.
    """
    def fail(key: str, expected: str) -> None:
        value = saved.get(key)
        shown = type(value).__name__ if isinstance(value, (list, dict)) else repr(value)[:80]
        raise ArchiveError(f"{source!r}: saved {key!r} must be {expected}, got {shown}")

    def is_count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT

    def is_number(value: Any) -> bool:  # JSON ints have no size limit: float() of a huge one overflows
        if isinstance(value, float):
            return math.isfinite(value)
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_COUNT

    for key in ("num_timesteps", "total_timesteps"):
        if key in saved and not is_count(saved[key]):
            fail(key, "a non-negative int")
    if saved.get("seed") is not None and not is_count(saved["seed"]):
        fail("seed", "a non-negative int or null")
    if saved.get("env_id") is not None and not isinstance(saved["env_id"], str):
        fail("env_id", "a string or null")
    returns = saved.get("episode_returns", [])
    if not isinstance(returns, list) or not all(is_number(x) for x in returns):
        fail("episode_returns", "a list of finite numbers")
    lengths = saved.get("episode_lengths", [])
    if not isinstance(lengths, list) or not all(is_count(x) for x in lengths):
        fail("episode_lengths", "a list of non-negative ints")
    for key in ("rng_state", "env_state"):
        if saved.get(key) is not None and not isinstance(saved[key], dict):
            fail(key, "an object or null")


def _check_same_space(role: str, saved: spaces.Space, given: spaces.Space, source: str) -> None:
    if saved != given:
        raise ArchiveError(f"{source!r}: the env's {role} space {given} differs from the saved model's {saved}")


# ---------------------------------------------------------------------- the positional layout
def variables_to_arrays(prefix: str, obj: Any) -> dict[str, np.ndarray]:
    """The layout of earlier releases: ``obj``'s variables as ``prefix/000``, ``prefix/001``, ...

    ``save`` stores variables by name now (``core.saved_variables``); this writes a file of the
    old layout, e.g. in tests of loading one."""
    return {f"{prefix}/{i:03d}": np.asarray(v.numpy()) for i, v in enumerate(obj.variables)}


def arrays_to_variables(prefix: str, obj: Any, arrays: dict[str, np.ndarray]) -> None:
    """Assign arrays of the positional layout back, refusing a missing array or a shape mismatch by name."""
    saved_variables.assign_by_position(prefix, obj, arrays)
