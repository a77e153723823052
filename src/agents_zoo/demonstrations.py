"""Expert demonstrations: train or load an expert, roll it out, save/load the classic GAIL ``.npz``.

Over ~400 lines because the file format's checks (every array bounded and validated before use)
sit beside the format they guard.

The file layout is that of the expert files of the original GAIL code (Ho & Ermon 2016, as
shipped with OpenAI baselines, e.g. ``deterministic.trpo.Hopper.0.00.npz``)::

    obs      (episodes, steps, *obs_shape)   float   observations s_0 .. s_{T-1}
    acs      (episodes, steps, *act_shape)   actions; (episodes, steps) ints for Discrete
    rews     (episodes, steps)               float   rewards
    ep_rets  (episodes,)                     float   undiscounted episode returns

Extra keys, all optional on load so classic files load as they are:

    lens       (episodes,) int     episode lengths; episodes shorter than ``steps`` are
                                   zero-padded after their end (ragged episodes)
    final_obs  (episodes, *obs_shape)  the observation after the last action, which
                                   ``imitation``'s ``Trajectory`` needs (T + 1 observations)
    terminal   (episodes,) bool    whether the episode ended in a true termination

Loading never unpickles (``np.load(..., allow_pickle=False)``) and validates keys, shapes,
dtypes and finiteness, raising :class:`DemonstrationError` that names the key and the problem.
Writes are atomic (:func:`agents_zoo.core.serialization.atomic_open`).

Example:
    >>> import numpy as np
    >>> demos = Demonstrations(observations=np.zeros((2, 3, 4), np.float32),
    ...                        actions=np.zeros((2, 3), np.int64), rewards=np.ones((2, 3), np.float32))
    >>> demos.n_episodes, demos.n_transitions, demos.episode_returns.tolist()
    (2, 6, [3.0, 3.0])
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from agents_zoo.core.envs import check_env_id, check_file_env_id, make_vec_env
from agents_zoo.core.episodes import run_episodes
from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.serialization import ArchiveError, PickleRequiredError, ZipReader, atomic_open

REQUIRED_KEYS = ("obs", "acs", "rews", "ep_rets")
OPTIONAL_KEYS = ("lens", "final_obs", "terminal")
EXPERT_TRAINERS = ("ppo", "trpo", "sb3-ppo")


class DemonstrationError(ValueError):
    """A demonstration file or array set that is malformed (names the key and the problem)."""


class DemonstrationFileError(DemonstrationError, ArchiveError):
    """A demonstration file that cannot be read: not an ``.npz``, corrupt, crafted or too large."""


class Policy(Protocol):
    """Anything with SB3's ``predict``: our agents and SB3/sb3-contrib models alike."""

    def predict(self, observation: Any, state: Any = ..., episode_start: Any = ...,
                deterministic: bool = ...) -> tuple[np.ndarray, Any]: ...


# ----------------------------------------------------------------------------- the data
@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """Episodes of an expert, padded to a common length (see the module docstring for layout)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_returns: np.ndarray | None = None
    lengths: np.ndarray | None = None
    final_observations: np.ndarray | None = None
    terminal: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_episodes, max_steps = np.shape(self.rewards)[:2] if np.ndim(self.rewards) == 2 else (None, None)
        if n_episodes is None:
            raise DemonstrationError(f"rews must have shape (episodes, steps), got {np.shape(self.rewards)}")
        if self.lengths is None:
            object.__setattr__(self, "lengths", np.full(n_episodes, max_steps, dtype=np.int64))
        if self.episode_returns is None:
            mask = np.arange(max_steps)[None, :] < np.asarray(self.lengths)[:, None]
            object.__setattr__(self, "episode_returns", np.where(mask, self.rewards, 0.0).sum(axis=1))
        validate_arrays(self.to_arrays())

    def __repr__(self) -> str:
        # The dataclass repr would print every array (megabytes for 25 Hopper episodes), and
        # benchmark records describe their arguments by repr.
        return (f"Demonstrations({self.n_episodes} episodes, {self.n_transitions} transitions, "
                f"observations {self.observations.shape[2:]} {self.observations.dtype}, "
                f"mean return {float(np.mean(self.episode_returns)):.2f})")

    # ------------------------------------------------------------------ views
    @property
    def n_episodes(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_transitions(self) -> int:
        return int(np.sum(self.lengths))

    @property
    def valid_mask(self) -> np.ndarray:
        """(episodes, steps) True where a step belongs to its episode (False on padding)."""
        return np.arange(self.rewards.shape[1])[None, :] < self.lengths[:, None]

    @property
    def fixed_horizon(self) -> bool:
        """All episodes have the same length (the condition of ``imitation``'s GAIL)."""
        return bool(np.all(self.lengths == self.lengths[0]))

    def transitions(self) -> tuple[np.ndarray, np.ndarray]:
        """All (observation, action) pairs of all episodes, padding dropped, in episode order."""
        mask = self.valid_mask
        return self.observations[mask], self.actions[mask]

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"obs": self.observations, "acs": self.actions, "rews": self.rewards,
                  "ep_rets": self.episode_returns, "lens": self.lengths}
        if self.final_observations is not None:
            arrays["final_obs"] = self.final_observations
        if self.terminal is not None:
            arrays["terminal"] = self.terminal
        return {key: np.asarray(value) for key, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Demonstrations":
        validate_arrays(arrays)
        return cls(observations=arrays["obs"], actions=arrays["acs"], rewards=arrays["rews"],
                   episode_returns=arrays["ep_rets"], lengths=arrays.get("lens"),
                   final_observations=arrays.get("final_obs"), terminal=arrays.get("terminal"))

    @classmethod
    def from_episodes(cls, episodes: Sequence[dict[str, np.ndarray]]) -> "Demonstrations":
        """Pad episodes given as dicts of ``obs`` (T or T + 1 rows), ``acts``, ``rews`` [, ``terminal``]."""
        if not episodes:
            raise DemonstrationError("no episodes given; expected at least one")
        lengths = np.array([len(e["acts"]) for e in episodes], dtype=np.int64)
        if np.any(lengths < 1):
            raise DemonstrationError(f"every episode needs at least one step, got lengths {lengths.tolist()}")
        max_steps = int(lengths.max())

        def pad(rows: np.ndarray, length: int) -> np.ndarray:
            rows = np.asarray(rows)[:length]
            return np.concatenate([rows, np.zeros((max_steps - length, *rows.shape[1:]), rows.dtype)])

        obs = np.stack([pad(e["obs"], n) for e, n in zip(episodes, lengths)])
        has_final = all(len(e["obs"]) == n + 1 for e, n in zip(episodes, lengths))
        final = np.stack([np.asarray(e["obs"])[n] for e, n in zip(episodes, lengths)]) if has_final else None
        terminal = np.array([bool(e.get("terminal", True)) for e in episodes])
        return cls(observations=obs, actions=np.stack([pad(e["acts"], n) for e, n in zip(episodes, lengths)]),
                   rewards=np.stack([pad(np.asarray(e["rews"], np.float32), n) for e, n in zip(episodes, lengths)]),
                   lengths=lengths, final_observations=final, terminal=terminal)


# ----------------------------------------------------------------------------- validation
def _fail(key: str, problem: str, where: str = "") -> None:
    raise DemonstrationError(f"{where}demonstration key {key!r} {problem}")


def validate_arrays(arrays: dict[str, np.ndarray], where: str = "") -> None:
    """Check keys, dtypes, shapes and finiteness of a demonstration array set."""
    for key in REQUIRED_KEYS:
        if key not in arrays:
            _fail(key, f"is missing; a demonstration file needs {', '.join(REQUIRED_KEYS)} "
                       f"(optional: {', '.join(OPTIONAL_KEYS)}), found {sorted(arrays)}", where)
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            _fail(key, f"must be a NumPy array, got {type(value).__name__}", where)
        if value.dtype == object:
            _fail(key, "holds Python objects (dtype object, e.g. ragged episodes stored as a list); "
                       "pad episodes to one length and store their lengths in 'lens'", where)
    obs, acs, rews, ep_rets = (arrays[k] for k in REQUIRED_KEYS)
    numeric = (np.floating, np.integer)
    for key, value, kinds in (("obs", obs, numeric), ("acs", acs, numeric), ("rews", rews, (np.floating,)),
                              ("ep_rets", ep_rets, (np.floating,))):
        if not any(np.issubdtype(value.dtype, kind) for kind in kinds):
            expected = "a float" if kinds == (np.floating,) else "a numeric (float or int)"
            _fail(key, f"has dtype {value.dtype}, expected {expected} dtype", where)
    if rews.ndim != 2:
        _fail("rews", f"has shape {rews.shape}, expected (episodes, steps)", where)
    n_episodes, max_steps = rews.shape
    if n_episodes < 1 or max_steps < 1:
        _fail("rews", f"has shape {rews.shape}: expected at least one episode of at least one step", where)
    for key, value in (("obs", obs), ("acs", acs)):
        if value.ndim < 2 or value.shape[:2] != (n_episodes, max_steps):
            _fail(key, f"has shape {value.shape}, expected ({n_episodes}, {max_steps}, ...) to match "
                       f"rews {rews.shape} (episodes x steps x dims)", where)
    if ep_rets.shape != (n_episodes,):
        _fail("ep_rets", f"has shape {ep_rets.shape}, expected ({n_episodes},)", where)
    lengths = arrays.get("lens")
    if lengths is not None:
        if not np.issubdtype(lengths.dtype, np.integer) or lengths.shape != (n_episodes,):
            _fail("lens", f"has dtype {lengths.dtype} and shape {lengths.shape}, expected ints of shape ({n_episodes},)", where)
        if np.any(lengths < 1) or np.any(lengths > max_steps):
            _fail("lens", f"holds {lengths.tolist()}, expected lengths in [1, {max_steps}]", where)
    final = arrays.get("final_obs")
    if final is not None and (final.shape != (n_episodes, *obs.shape[2:]) or final.dtype.kind not in "fiu"):
        _fail("final_obs", f"has shape {final.shape} and dtype {final.dtype}, expected numeric "
                           f"({n_episodes}, {', '.join(map(str, obs.shape[2:]))})", where)
    terminal = arrays.get("terminal")
    if terminal is not None and (terminal.dtype != np.bool_ or terminal.shape != (n_episodes,)):
        _fail("terminal", f"has dtype {terminal.dtype} and shape {terminal.shape}, expected bool ({n_episodes},)", where)
    for key, value in arrays.items():
        if key in (*REQUIRED_KEYS, "final_obs") and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            first = np.argwhere(~np.isfinite(value))[0].tolist()
            _fail(key, f"holds non-finite values (NaN or inf), first at index {first}", where)
    mask = np.arange(max_steps)[None, :] < (lengths if lengths is not None else np.full(n_episodes, max_steps))[:, None]
    sums = np.where(mask, rews, 0.0).sum(axis=1)
    if not np.allclose(sums, ep_rets, rtol=1e-4, atol=1e-3):
        worst = int(np.argmax(np.abs(sums - ep_rets)))
        _fail("ep_rets", f"disagrees with the sum of rews: episode {worst} has ep_rets {ep_rets[worst]:.6g} "
                         f"but its rewards sum to {sums[worst]:.6g}", where)


# ----------------------------------------------------------------------------- files
def save_demonstrations(path: str | os.PathLike, demonstrations: Demonstrations) -> Path:
    """Write the classic GAIL ``.npz`` (plus ``lens``/``final_obs``/``terminal``) atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"demonstration files end in .npz, got {str(path)!r}")
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, **demonstrations.to_arrays())
    return path


def load_demonstrations(path: str | os.PathLike) -> Demonstrations:
    """Read and validate a demonstration ``.npz`` without ever unpickling."""
    path = Path(path)
    where = f"{str(path)!r}: "
    if not path.is_file():
        raise FileNotFoundError(f"no demonstration file at {str(path)!r}")
    with open(path, "rb") as handle:
        head = handle.read(8)
    _check_file_start(head, where)
    # The same bounded reader as model archives: members inflate in counted steps, within a
    # limit derived from the file's size, and each .npy header must match its bytes.
    arrays: dict[str, np.ndarray] = {}
    with ZipReader(path, error=DemonstrationFileError, what="a readable .npz archive") as reader:
        for key in REQUIRED_KEYS + OPTIONAL_KEYS:
            member = f"{key}.npy"
            if member not in reader.names:
                continue  # other tools add keys of their own; they are ignored, never read
            try:
                arrays[key] = reader.read_array(member, f"demonstration key {key!r}")
            except PickleRequiredError:
                raise DemonstrationFileError(f"{where}demonstration key {key!r} holds pickled Python objects "
                                             "(dtype object), which are never loaded") from None
    validate_arrays(arrays, where)
    return Demonstrations.from_arrays(arrays)


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _check_file_start(head: bytes, where: str) -> None:
    """Refuse a file that cannot be an ``.npz`` from its first bytes, saying what it looks like.

    Only a file that starts like a pickle (the protocol 2+ opcode) is called one; a file cut
    short inside the magic bytes of a ``.npy`` or a zip is called truncated, never a pickle.
    """
    if head.startswith(_NPY_MAGIC):
        raise DemonstrationFileError(f"{where}holds a single .npy array, expected an .npz archive with keys "
                                     f"{', '.join(REQUIRED_KEYS)}")
    if head.startswith(b"PK"):
        return  # a zip (the ZipReader checks the rest)
    if not head:
        raise DemonstrationFileError(f"{where}is empty, expected an .npz archive")
    if _NPY_MAGIC.startswith(head) or _ZIP_MAGIC.startswith(head):  # a proper prefix of either
        raise DemonstrationFileError(f"{where}is truncated ({len(head)} bytes): not a complete .npz archive")
    if head[:1] == b"\x80":
        raise DemonstrationFileError(f"{where}is a pickle file, not an .npz archive: pickles are never loaded")
    raise DemonstrationFileError(f"{where}is not an .npz archive (it starts with {head[:4]!r}, expected "
                                 f"{_ZIP_MAGIC!r})")


# ----------------------------------------------------------------------------- imitation types
def to_trajectories(demonstrations: Demonstrations) -> list:
    """``imitation.data.types.TrajectoryWithRew`` per episode.

    Needs ``final_obs`` for the (T + 1)-th observation; classic files lack it, so there the
    last observation is repeated (GAIL on (s, a) pairs never reads it).
    """
    from imitation.data import types

    trajectories = []
    for i, length in enumerate(demonstrations.lengths):
        obs = demonstrations.observations[i, :length]
        final = (demonstrations.final_observations[i] if demonstrations.final_observations is not None else obs[-1])
        terminal = True if demonstrations.terminal is None else bool(demonstrations.terminal[i])
        trajectories.append(types.TrajectoryWithRew(
            obs=np.concatenate([obs, final[None]]), acts=demonstrations.actions[i, :length], infos=None,
            terminal=terminal, rews=demonstrations.rewards[i, :length].astype(np.float32)))
    return trajectories


def from_trajectories(trajectories: Sequence[Any]) -> Demonstrations:
    """From ``imitation`` ``Trajectory``/``TrajectoryWithRew``; rewards are 0 where absent."""
    episodes = []
    for index, trajectory in enumerate(trajectories):
        if not hasattr(trajectory, "obs") or not hasattr(trajectory, "acts"):
            raise TypeError(f"trajectory {index} is a {type(trajectory).__name__}, expected an imitation Trajectory")
        if not isinstance(trajectory.obs, np.ndarray):
            raise TypeError(f"trajectory {index} has dict observations; only array observations are supported")
        rews = getattr(trajectory, "rews", None)
        episodes.append({"obs": trajectory.obs, "acts": trajectory.acts, "terminal": bool(trajectory.terminal),
                         "rews": np.zeros(len(trajectory.acts), np.float32) if rews is None else rews})
    return Demonstrations.from_episodes(episodes)


# ----------------------------------------------------------------------------- experts
def rollout(policy: Policy, env: Any, n_episodes: int, *, seed: int | None = 0, deterministic: bool = True,
            n_envs: int = 8) -> Demonstrations:
    """Roll ``policy`` out for ``n_episodes`` full episodes on ``env`` (an id or a factory).

    Episodes are spread over up to ``n_envs`` envs and acted in one batched ``predict`` call
    per step, by :func:`agents_zoo.core.episodes.run_episodes`.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive int, got {n_episodes!r}")
    n_envs = min(n_envs, n_episodes)
    if isinstance(env, str):
        check_env_id(env)  # seals/... and module:EnvId ids register on import
    vec = make_vec_env(env, n_envs, derive_seed(seed, 4243) if seed is not None else None)
    try:
        episodes = run_episodes(vec, lambda obs: policy.predict(obs, deterministic=deterministic)[0], n_episodes,
                                seed=derive_seed(seed, 4243), record=True)
    finally:
        vec.close()
    return Demonstrations.from_episodes([{"obs": episode.observations, "acts": episode.actions,
                                          "terminal": episode.terminated, "rews": episode.rewards}
                                         for episode in episodes])


def train_expert(env_id: str, trainer: str = "ppo", total_timesteps: int = 100_000, seed: int = 0,
                 config: dict[str, Any] | None = None, verbose: int = 0, checkpoint_path: str | os.PathLike | None = None,
                 checkpoint_every: int = 100_000) -> Any:
    """Train an expert with our PPO, sb3-contrib's TRPO (the GAIL paper's expert) or SB3's PPO.

    ``config`` overrides the trainer's hyperparameters (our PPO's config fields, or SB3 keyword
    arguments). Returns a model with ``predict`` and ``save``.

    ``checkpoint_path`` (our PPO only, whose save holds its whole training state): the expert is
    saved there every ``checkpoint_every`` steps, and training continues from that file when it
    exists, so an expert run that is cut (a 2M-step PyBullet expert takes an hour) resumes where
    it was, as the uninterrupted run would have gone on. The caller owns the file: the same path
    must mean the same env, settings and seed.
    """
    if trainer not in EXPERT_TRAINERS:
        raise ValueError(f"trainer must be one of {', '.join(EXPERT_TRAINERS)}, got {trainer!r}")
    if checkpoint_path is not None and trainer != "ppo":
        raise ValueError(f"checkpoint_path resumes our PPO ('ppo'), whose file holds its whole training state; "
                         f"trainer {trainer!r} has no such save")
    config = dict(config or {})
    check_env_id(env_id)
    if trainer == "ppo":
        from agents_zoo import registry

        n_envs = config.pop("n_envs", 8)
        checkpoints = ({} if checkpoint_path is None
                       else {"checkpoint_every": checkpoint_every, "checkpoint_path": checkpoint_path})
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            agent = registry.get_agent_class("ppo").load(checkpoint_path, env=env_id)
            remaining = total_timesteps - agent.num_timesteps
            return agent.learn(remaining, reset_num_timesteps=False, **checkpoints) if remaining > 0 else agent
        agent = registry.make("ppo", env_id, seed=seed, verbose=verbose, n_envs=n_envs, **config)
        return agent.learn(total_timesteps, **checkpoints)
    sb3_class = _sb3_class(trainer)
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    n_envs = config.pop("n_envs", 8)
    env = sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed)
    model = sb3_class("MlpPolicy", env, seed=seed, verbose=verbose, device="cpu", **config)
    return model.learn(total_timesteps)


def load_expert(path: str | os.PathLike, trainer: str = "ppo") -> Any:
    """Load an expert saved by :func:`save_expert`, never through pickle.

    Our agents load from their archive. SB3/sb3-contrib experts were saved by ``save_expert`` as
    their policy weights in the same archive format; the model is rebuilt on its env id and the
    weights assigned. SB3's own zips are refused: SB3 unpickles parts of them (cloudpickle).
    """
    if trainer not in EXPERT_TRAINERS:
        raise ValueError(f"trainer must be one of {', '.join(EXPERT_TRAINERS)}, got {trainer!r}")
    if trainer == "ppo":
        from agents_zoo.core.base import BaseAgent

        return BaseAgent.load(str(path))
    from agents_zoo.core.serialization import load_archive

    try:
        archive = load_archive(path, expected_kind=f"expert/{trainer}")
    except ArchiveError as exc:
        raise ArchiveError(f"{exc}. agents-zoo loads only {trainer} experts that `agents-zoo expert train` "
                           "(save_expert) wrote: SB3's own zip files are unpickled by SB3 and are not read") from None
    env_id, policy_kwargs = archive.config.get("env_id"), archive.config.get("policy_kwargs", {})
    if not isinstance(env_id, str) or not isinstance(policy_kwargs, dict):
        raise ArchiveError(f"{str(path)!r}: expert config needs an env_id string and a policy_kwargs object, "
                           f"got {env_id!r} and {policy_kwargs!r}")
    # The id came from the file: it may name a registered env, never a module to import.
    env_id = check_file_env_id(env_id, path)
    import torch
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    env = sb3_make_vec_env(env_id, n_envs=1)
    # policy_kwargs (net_arch) decide the size of the policy built below, before any weight is
    # read: it may not declare more parameters than the file holds (as core.load_limits does for
    # our Keras networks).
    declared = _sb3_policy_parameters(policy_kwargs, env.observation_space, env.action_space, path)
    present = sum(int(value.size) for name, value in archive.arrays.items() if name.startswith("policy/"))
    if declared > present:
        env.close()
        raise ArchiveError(f"{str(path)!r}: policy_kwargs {policy_kwargs!r} declare a policy of at least {declared} "
                           f"parameters, but the file holds {present} policy weights; expected at most that many")
    model = _sb3_class(trainer)("MlpPolicy", env, policy_kwargs=policy_kwargs, device="cpu")
    expected = model.policy.state_dict()
    weights = {name[len("policy/"):]: value for name, value in archive.arrays.items() if name.startswith("policy/")}
    if weights.keys() != expected.keys():
        raise ArchiveError(f"{str(path)!r}: expert weights {sorted(weights)} do not match the policy's {sorted(expected)}")
    for name, value in weights.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ArchiveError(f"{str(path)!r}: expert weight {name} has shape {value.shape}, "
                               f"expected {tuple(expected[name].shape)}")
    model.policy.load_state_dict({name: torch.as_tensor(value) for name, value in weights.items()})
    return model


def save_expert(model: Any, path: str | os.PathLike) -> Path:
    """Save an expert atomically in the pickle-free archive format.

    An SB3/sb3-contrib model is stored as its policy weights plus the env id and (JSON-only)
    ``policy_kwargs`` it needs to be rebuilt, not as SB3's zip, which SB3 reads with cloudpickle.
    """
    from agents_zoo.core.serialization import save_archive

    path = Path(path)
    if hasattr(model, "env_id"):  # our agents write their own archive atomically
        model.save(path)
        return path
    trainer = "trpo" if type(model).__name__ == "TRPO" else "sb3-ppo"
    env_id = model.get_env().get_attr("spec")[0].id
    policy_kwargs = dict(model.policy_kwargs or {})
    try:
        json.dumps(policy_kwargs)
    except TypeError:
        raise ValueError(f"policy_kwargs {policy_kwargs!r} of this {trainer} expert are not plain JSON "
                         "(e.g. an activation class); only JSON settings can be saved without pickle") from None
    arrays = {f"policy/{name}": value.detach().cpu().numpy() for name, value in model.policy.state_dict().items()}
    return save_archive(path, kind=f"expert/{trainer}", config={"env_id": env_id, "policy_kwargs": policy_kwargs},
                        arrays=arrays)


def _sb3_policy_parameters(policy_kwargs: dict[str, Any], observation_space: Any, action_space: Any,
                           path: Any) -> int:
    """A lower bound of the parameters of SB3's ``MlpPolicy`` built with ``policy_kwargs``.

    The policy and value MLPs over the flattened observation (SB3's default ``net_arch`` is
    64, 64 for each); the log-std and any shared extractor only add to it.
    """
    from gymnasium.spaces.utils import flatdim

    net_arch = policy_kwargs.get("net_arch", {"pi": [64, 64], "vf": [64, 64]})
    if isinstance(net_arch, dict):
        arch = {"pi": net_arch.get("pi", []), "vf": net_arch.get("vf", [])}
    else:
        arch = {"pi": net_arch, "vf": net_arch}
    for sizes in arch.values():
        if not isinstance(sizes, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                   for n in sizes):
            raise ArchiveError(f"{str(path)!r}: policy_kwargs net_arch must be a list of positive ints or "
                               f"{{'pi': [...], 'vf': [...]}}, got {net_arch!r}")
    features, outputs = flatdim(observation_space), flatdim(action_space)
    layers = [[features, *arch["pi"], outputs], [features, *arch["vf"], 1]]
    return sum((n_in + 1) * n_out for sizes in layers for n_in, n_out in zip(sizes, sizes[1:]))


def _sb3_class(trainer: str) -> Any:
    try:
        if trainer == "trpo":
            from sb3_contrib import TRPO

            return TRPO
        from stable_baselines3 import PPO

        return PPO
    except ImportError as exc:
        raise ImportError(f"--trainer {trainer} needs the [bench] extra: pip install 'agents-zoo[bench]' ({exc})") from None
