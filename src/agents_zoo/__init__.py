"""agents-zoo: TensorFlow 2 reinforcement-learning agents as Gymnasium plugins.

    import agents_zoo
    agent = agents_zoo.make("ppo", "CartPole-v1", seed=0)
    agent.learn(100_000, progress_bar=True)
"""

from __future__ import annotations

import os

# TF prints pages of start-up logs; keep them to errors unless the user asked otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from agents_zoo.core.quiet_startup import prefer_onednn_kernels  # noqa: E402

prefer_onednn_kernels()

from agents_zoo.registry import (  # noqa: E402
    AgentRegistryError,
    UnknownAgentError,
    get_agent_class,
    list_agents,
    make,
    register,
    unregister,
)

__version__ = "0.1.0"


def load(path: str, env=None, **kwargs):
    """Load any saved agent; its kind in the file picks the class from the registry."""
    from agents_zoo.core.base import BaseAgent

    return BaseAgent.load(path, env=env, **kwargs)


def _register_envs_for_gymnasium_1x() -> None:
    # gymnasium >= 1.0 no longer loads the `gymnasium.envs` entry points; registering on import
    # keeps `gym.make` working for our ids there.
    try:
        import wrappers.registration as registration

        registration.register_envs()
    except Exception:  # noqa: BLE001 - env registration must never break importing the agents
        pass


_register_envs_for_gymnasium_1x()

__all__ = ["make", "list_agents", "register", "unregister", "get_agent_class", "load",
           "AgentRegistryError", "UnknownAgentError", "__version__"]
