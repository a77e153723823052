"""Environment construction: ids, instances or factories -> one ``gymnasium.vector`` env."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv, VectorEnv

from agents_zoo.core.seeding import derive_seed

EnvLike = Union[str, gym.Env, VectorEnv, Callable[[], gym.Env]]


class UnknownEnvError(ValueError):
    """An environment id that gymnasium does not know."""


def ensure_env_registrations() -> None:
    """Make our ids and the ALE/PyBullet ids known, also under gymnasium 1.x."""
    try:
        import wrappers.registration as registration

        registration.register_envs()
    except ImportError:  # the wrappers package is part of this distribution; only broken installs land here
        pass


def check_env_id(env_id: str) -> None:
    """Raise ``UnknownEnvError`` with the closest registered ids when ``env_id`` is unknown."""
    if env_id in gym.registry:
        return
    ensure_env_registrations()
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownEnvError(f"unknown environment id {env_id!r}{hint} (see `agents-zoo list` for our ids)")


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    check_env_id(env_id)
    return gym.make(env_id, **kwargs)


def env_factory(env: str | Callable[[], gym.Env], **kwargs: Any) -> Callable[[], gym.Env]:
    if isinstance(env, str):
        check_env_id(env)
        return lambda: gym.make(env, **kwargs)
    if callable(env):
        return env
    raise TypeError(f"expected an env id or a zero-argument env factory, got {env!r}")


def make_vec_env(env: EnvLike, n_envs: int = 1, seed: int | None = None, **env_kwargs: Any) -> VectorEnv:
    """Build a synchronous vector env of ``n_envs`` copies and seed it once.

    Accepts an env id, a zero-argument factory, a single ``gym.Env`` (then ``n_envs`` must be 1)
    or a ready ``VectorEnv`` (then ``n_envs`` must match its ``num_envs``). Sync, not async: on
    small machines the step is cheaper than a process hop, and TF acts on all envs in one call.
    """
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
    if isinstance(env, VectorEnv):
        if env.num_envs != n_envs:
            raise ValueError(f"the vector env has {env.num_envs} envs but n_envs={n_envs} was asked for")
        vec = env
    elif isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError(
                f"a single env instance cannot be copied into n_envs={n_envs} envs; pass the env id or a factory"
            )
        vec = SyncVectorEnv([lambda: env])
    else:
        factory = env_factory(env, **env_kwargs)
        vec = SyncVectorEnv([factory for _ in range(n_envs)])
    vec.reset(seed=seed)
    if seed is not None:
        vec.action_space.seed(derive_seed(seed, 1))
        vec.single_action_space.seed(derive_seed(seed, 2))
    return vec


def env_id_of(env: Any) -> str | None:
    """The registered id behind an env, vector env or id string, when there is one."""
    if isinstance(env, str):
        return env
    if isinstance(env, VectorEnv):
        envs = getattr(env, "envs", None)
        if envs:
            return env_id_of(envs[0])
        spec = getattr(env, "spec", None)
        return getattr(spec, "id", None)
    spec = getattr(env, "spec", None)
    return getattr(spec, "id", None)


def check_finite(name: str, value: np.ndarray, step: int) -> None:
    """Opt-in guard (``detect_nonfinite``): stop with the step number at the first NaN/inf."""
    if not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(np.asarray(value, dtype=np.float64)))
        raise FloatingPointError(f"non-finite {name} at step {step} (first at index {bad[0].tolist()}): {value!r}")
