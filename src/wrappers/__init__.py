"""Gymnasium wrappers for Atari and image observations, presets, and our env registrations.

One class per transform (see :mod:`wrappers.atari`, :mod:`wrappers.image`,
:mod:`wrappers.frame_stack`), composed by :mod:`wrappers.atari_presets` into the DQN-paper and
GAN-frames presets, registered as ``agents_zoo/<Game>-dqn-v0`` and ``agents_zoo/<Game>-gan-v0``
(:mod:`wrappers.registration`). :mod:`wrappers.time_feature` appends the remaining episode time to
vector observations (sb3-contrib's ``TimeFeatureWrapper``).

This module stays light because gymnasium imports it while ``import gymnasium`` runs (the
``gymnasium.envs`` entry point): the public names below are loaded on first access, and cv2 /
ale_py only when a wrapper or env is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from wrappers import registration as _registration

_LAZY_NAMES = {
    "NoopReset": "wrappers.atari",
    "MaxAndSkipObservation": "wrappers.atari",
    "EpisodicLife": "wrappers.atari",
    "FireReset": "wrappers.atari",
    "ClipReward": "wrappers.atari",
    "ResizeObservation": "wrappers.image",
    "GrayscaleObservation": "wrappers.image",
    "ChannelFirstObservation": "wrappers.image",
    "ScaleObservation": "wrappers.image",
    "FrameStackObservation": "wrappers.frame_stack",
    "TimeFeatureWrapper": "wrappers.time_feature",
    "LazyFrames": "wrappers.frame_stack",
    "AtariPreset": "wrappers.atari_presets",
    "DQN_PRESET": "wrappers.atari_presets",
    "GAN_PRESET": "wrappers.atari_presets",
    "make_atari_env": "wrappers.atari_presets",
    "make_atari_vector_env": "wrappers.atari_presets",
    "wrap_atari": "wrappers.atari_presets",
    "register_envs": "wrappers.registration",
    "list_env_ids": "wrappers.registration",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'wrappers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# gymnasium >= 1.0 no longer loads the `gymnasium.envs` entry points, so register on import too.
_registration.register_envs()
