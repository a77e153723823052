"""The agent plugin registry.

Agents come from the entry-point group ``agents_zoo.agents`` (our own agents are declared in
our pyproject.toml exactly as a third-party package declares its own) and from ``register()``
calls in the running process. A plugin that fails to import is reported as a warning naming
it and its error, and every other agent still loads.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from agents_zoo.core.suggest import did_you_mean

ENTRY_POINT_GROUP = "agents_zoo.agents"


class AgentRegistryError(ValueError):
    """Duplicate or unknown agent names."""


class UnknownAgentError(AgentRegistryError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginLoadWarning(UserWarning):
    """An agent plugin's entry point could not be imported."""


@dataclass
class AgentSpec:
    name: str
    factory: Callable[..., Any] | None
    distribution: str
    entry_point: str
    error: str | None = None


_registered: dict[str, AgentSpec] = {}
_entry_point_cache: dict[str, AgentSpec] | None = None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name != name.strip() or name.lower() != name:
        raise AgentRegistryError(f"agent names are non-empty lower-case strings without spaces, got {name!r}")
    return name


def _discover() -> dict[str, AgentSpec]:
    global _entry_point_cache
    if _entry_point_cache is not None:
        return _entry_point_cache
    found: dict[str, AgentSpec] = {}
    seen: set[tuple[str, str]] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else "unknown"
        if (ep.name, ep.value) in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        if ep.name in found:
            raise AgentRegistryError(
                f"agent name {ep.name!r} is declared twice: by {found[ep.name].distribution} ({found[ep.name].entry_point}) "
                f"and by {dist} ({ep.value}); uninstall one of them"
            )
        try:
            factory = ep.load()
            found[ep.name] = AgentSpec(ep.name, factory, dist, ep.value)
        except Exception as exc:  # noqa: BLE001 - any plugin failure must not break the others
            warnings.warn(f"agent plugin {ep.name!r} from {dist} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", PluginLoadWarning, stacklevel=3)
            found[ep.name] = AgentSpec(ep.name, None, dist, ep.value, error=f"{type(exc).__name__}: {exc}")
        factory = found[ep.name].factory
        if isinstance(factory, type) and getattr(factory, "name", None) == "base":
            factory.name = ep.name  # a BaseAgent subclass that did not set its name gets the entry point's
    _entry_point_cache = found
    return found


def reload_plugins() -> None:
    """Forget discovered entry points (after installing a plugin in this process)."""
    global _entry_point_cache
    _entry_point_cache = None
    metadata.distributions.cache_clear() if hasattr(metadata.distributions, "cache_clear") else None


def register(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Add an agent in this process; ``factory(env, **config)`` must return an agent."""
    _check_name(name)
    if not callable(factory):
        raise TypeError(f"factory for agent {name!r} must be callable, got {factory!r}")
    if not overwrite and (name in _registered or name in _discover()):
        where = _registered.get(name) or _discover()[name]
        raise AgentRegistryError(f"agent {name!r} is already registered (by {where.distribution}); "
                                 "pass overwrite=True to replace it")
    _registered[name] = AgentSpec(name, factory, "<registered in process>", getattr(factory, "__qualname__", repr(factory)))


def unregister(name: str) -> None:
    if name not in _registered:
        raise UnknownAgentError(f"agent {name!r} was not registered in this process")
    del _registered[name]


def agent_specs() -> dict[str, AgentSpec]:
    return {**_discover(), **_registered}


def list_agents(include_broken: bool = False) -> list[str]:
    """Names of the agents that can be made (and, optionally, those whose plugin failed)."""
    return sorted(name for name, spec in agent_specs().items() if include_broken or spec.factory is not None)


def get_spec(name: str) -> AgentSpec:
    specs = agent_specs()
    if name not in specs:
        known = sorted(specs)
        hint = did_you_mean(name, known, sentence=True)
        raise UnknownAgentError(f"unknown agent {name!r}.{hint} Known agents: {', '.join(known) or 'none'}")
    spec = specs[name]
    if spec.factory is None:
        raise AgentRegistryError(f"agent {name!r} from {spec.distribution} is installed but failed to load: {spec.error}")
    return spec


def get_agent_class(name: str) -> Any:
    return get_spec(name).factory


def make(name: str, env: Any = None, **config: Any) -> Any:
    """Create agent ``name`` on ``env`` (an id, an env, or a vector env) with config overrides."""
    return get_spec(name).factory(env, **config)
