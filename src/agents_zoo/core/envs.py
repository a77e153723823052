"""Environment construction: ids, instances or factories -> one ``gymnasium.vector`` env."""

from __future__ import annotations

import os
from typing import Any, Callable, Union

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.serialization import ArchiveError
from agents_zoo.core.suggest import did_you_mean

# The same-step autoreset contract lives in wrappers.autoreset, beside our env registrations in the
# foundation layer, so that the Atari presets build vector envs without importing agents_zoo.
from wrappers.autoreset import (  # noqa: F401 - re-exported: callers import them from here
    FINAL_OBSERVATION_KEY,
    AutoresetMode,
    check_same_step_autoreset,
    sync_vector_env,
)

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


# Env packages that register their ids only when imported, by namespace. An id read from a
# file may import only these (a file must never choose a module to import; adding a namespace is
# a code change); an id typed by the user may name any namespace's package, as ``gym.make`` allows.
ENV_NAMESPACE_PACKAGES = {"seals": ("seals", "seals")}  # namespace -> (module, pip distribution)


class FileEnvIdError(ArchiveError, UnknownEnvError):
    """An env id read from a file that may not be used (names a module, or is not registered)."""


class UnregisteredFileEnvIdError(FileEnvIdError):
    """An env id read from a file that is well formed but not registered (its package may be missing)."""


def check_env_id(env_id: str, *, source: str | os.PathLike | None = None) -> None:
    """Make ``env_id`` known to gymnasium, or raise ``UnknownEnvError`` saying what to install or type.

    One mechanism for every command and every id (``train``, ``evaluate``, ``bench``, ``expert``):

    - ids already registered, and ours and the ALE/PyBullet ids (registered on demand);
    - ``namespace/Name`` ids whose package registers on import (``seals/CartPole-v0``): the
      namespace's module is imported, with the install hint when it is missing;
    - gymnasium's own ``module:EnvId`` form (``gym.make("my_pkg:MyEnv-v0")``): ``module`` is
      imported, then ``EnvId`` must be registered.

    ``source`` names the file an id was read from (a saved model, an expert archive). Such ids
    may not use the ``module:`` form and import only the packages of
    :data:`ENV_NAMESPACE_PACKAGES`, so loading a file never picks code to run; their errors are
    :class:`FileEnvIdError` (also an ``ArchiveError``).
    """
    where = f"{str(source)!r}: " if source is not None else ""
    if not isinstance(env_id, str) or not env_id.strip():
        error = FileEnvIdError if source is not None else UnknownEnvError
        raise error(f"{where}env_id must be a non-empty string, got {env_id!r}")
    if env_id in gym.registry:
        return
    ensure_env_registrations()
    if env_id in gym.registry:
        return
    if ":" in env_id:
        if source is not None:
            raise FileEnvIdError(f"{where}env_id {env_id!r} names a module to import (gymnasium's 'module:EnvId' "
                                 "form); a file may not name a module to import, only a registered env id "
                                 "(pass --env ID to choose the env yourself)")
        module, _, plain_id = env_id.partition(":")
        _import_env_package(module, module, env_id, source)
        if plain_id in gym.registry:
            return
        raise UnknownEnvError(f"importing {module!r} did not register {plain_id!r} (asked for {env_id!r})")
    namespace, slash, _ = env_id.rpartition("/")
    if slash and namespace:
        module, distribution = ENV_NAMESPACE_PACKAGES.get(namespace, (None, None))
        if module is None and source is None:
            module = distribution = namespace
        if module is not None:
            _import_env_package(module, distribution, env_id, source)
            if env_id in gym.registry:
                return
    if source is not None:
        known = ", ".join(repr(f"{name}/...") for name in sorted(ENV_NAMESPACE_PACKAGES))
        raise UnregisteredFileEnvIdError(f"{where}env_id {env_id!r} is not a registered environment id; a file may "
                                         f"name only registered ids (gymnasium's, ours) or ids of the known env "
                                         f"packages ({known})")
    hint = did_you_mean(env_id, gym.registry, n=3)
    raise UnknownEnvError(f"unknown environment id {env_id!r}{hint} (see `agents-zoo list` for our ids)")


def check_file_env_id(env_id: Any, source: str | os.PathLike) -> str:
    """``check_env_id`` for an id read from the file ``source``; returns the id."""
    check_env_id(env_id, source=source)
    return env_id


def _import_env_package(module: str, distribution: str, env_id: str, source: str | os.PathLike | None) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        error = UnregisteredFileEnvIdError if source is not None else UnknownEnvError
        where = f"{str(source)!r}: " if source is not None else ""
        raise error(f"{where}environment id {env_id!r} needs the package that registers it ({exc}); "
                    f"install it, e.g. pip install {distribution}") from None


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


def fixed_n_envs(env: Any) -> int | None:
    """How many envs a ready env is: a ``VectorEnv``'s ``num_envs``, 1 for a ``gym.Env``; None for an id or a factory.

    An agent given a ready env takes its ``n_envs`` from it, as SB3 takes a VecEnv's.
    """
    if isinstance(env, VectorEnv):
        return env.num_envs
    if isinstance(env, gym.Env):
        return 1
    return None


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
        check_same_step_autoreset(env)
        vec = env
    elif isinstance(env, gym.Env):
        if n_envs != 1:
            raise ValueError(
                f"a single env instance cannot be copied into n_envs={n_envs} envs; pass the env id or a factory"
            )
        vec = sync_vector_env([lambda: env])
    else:
        factory = env_factory(env, **env_kwargs)
        vec = sync_vector_env([factory for _ in range(n_envs)])
    vec.reset(seed=seed)
    if seed is not None:
        vec.action_space.seed(derive_seed(seed, 1))
        vec.single_action_space.seed(derive_seed(seed, 2))
    return vec


def env_id_of(env: Any) -> str | None:
    """The registered id behind an env, vector env or id string, when there is one.

    ``module:EnvId`` gives ``EnvId``: files keep the plain id, since an id read from a file may
    not name a module to import (``check_env_id``).
    """
    if isinstance(env, str):
        return env.partition(":")[2] if ":" in env else env
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
