"""Composed Atari preprocessing: the DQN-paper preset and the GAN-frames preset.

``make_atari_env("Pong")`` builds the ALE game directly (the ``PongNoFrameskip-v4`` config:
no frame skip in the emulator, no sticky actions, 108,000-frame truncation) and wraps it:

=========  ======================================================  ======================
step       DQN preset (``agents_zoo/<Game>-dqn-v0``)               GAN preset (``-gan-v0``)
=========  ======================================================  ======================
reset      1-30 no-ops, FIRE where the game has it                 same
step       repeat 4 frames, max of the last two                    same
episodes   a lost life ends the episode (real reset on game over)  full games
reward     clipped to [-1, 1]                                      raw score
frames     84x84 gray (ALE's luminance), stack of 4, uint8         64x64 RGB, float32 [0,1]
output     ``(4, 84, 84)`` uint8                                   ``(3, 64, 64)`` float32
=========  ======================================================  ======================

The wrapper order is that of SB3's ``AtariWrapper`` (noop, skip, life, fire, warp, clip), so
the same seed and actions give the same observations (see tests/test_wrappers.py).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import gymnasium as gym

from wrappers import atari, autoreset, frame_stack, image, registration


@dataclasses.dataclass(frozen=True)
class AtariPreset:
    """Settings of one Atari preprocessing chain; every field can be overridden by keyword."""

    noop_max: int = 30
    """Reset with 1..noop_max random no-ops (0: off)."""
    frame_skip: int = 4
    """Emulator frames per agent step; the observation is the max of the last two."""
    screen_size: int | tuple[int, int] = 84
    """Output height and width (an int for square frames)."""
    grayscale: bool = True
    """Gray frames (from the emulator) instead of RGB."""
    episodic_life: bool = True
    """A lost life ends the episode for the agent; the game resets only on game over."""
    fire_reset: bool = True
    """Press FIRE after reset, in games whose action 1 is FIRE."""
    clip_reward: bool = True
    """Clip rewards to [-1, 1]."""
    frame_stack: int = 4
    """Frames stacked along the leading (channel) axis."""
    scale: bool = False
    """float32 in [0, 1] instead of uint8 in [0, 255]."""
    repeat_action_probability: float = 0.0
    """ALE sticky actions (0.25 in Machado et al. 2018 / the v5 ids; 0 in the DQN paper)."""
    max_num_frames_per_episode: int = 108_000
    """Emulator frames before truncation (30 minutes of play)."""
    full_action_space: bool = False
    """All 18 actions instead of the game's minimal set."""


DQN_PRESET = AtariPreset()
GAN_PRESET = AtariPreset(
    screen_size=64, grayscale=False, episodic_life=False, clip_reward=False, frame_stack=1, scale=True
)
PRESETS = {"dqn": DQN_PRESET, "gan": GAN_PRESET}

_ROM_ID_BY_NAME = {registration.rom_id_to_game_name(rom): rom for rom in registration.ATARI_ROM_IDS}
_OUR_ID = re.compile(rf"^{registration.NAMESPACE}/(?P<game>\w+)-(?P<preset>\w+)-v\d+$")
_V4_ID = re.compile(r"^(?P<game>\w+?)NoFrameskip-v4$")


def resolve_game(game_or_id: str) -> tuple[str, str | None]:
    """Return (ALE ROM id, preset named by the id or None) for a game name or an env id.

    Accepts ``"Pong"``, ``"pong"``, ``"space_invaders"``, ``"PongNoFrameskip-v4"`` and our ids
    such as ``"agents_zoo/Pong-gan-v0"``.

    >>> resolve_game("SpaceInvaders"), resolve_game("agents_zoo/Pong-gan-v0")
    (('space_invaders', None), ('pong', 'gan'))
    """
    if not isinstance(game_or_id, str):
        raise TypeError(f"expected a game name or env id string, got {game_or_id!r}")
    preset = None
    name = game_or_id
    for pattern in (_OUR_ID, _V4_ID):
        match = pattern.match(game_or_id)
        if match:
            name, preset = match["game"], match.groupdict().get("preset")
            break
    if name in registration.ATARI_ROM_IDS:
        return name, preset
    if name in _ROM_ID_BY_NAME:
        return _ROM_ID_BY_NAME[name], preset
    raise ValueError(
        f"unknown Atari game {game_or_id!r}; expected an ALE game name such as 'Pong' or 'pong', "
        f"'<Game>NoFrameskip-v4' or 'agents_zoo/<Game>-<preset>-v0' (see wrappers.list_env_ids())"
    )


def _preset_with(preset: str | AtariPreset, overrides: dict[str, Any]) -> AtariPreset:
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)} or an AtariPreset, got {preset!r}")
        preset = PRESETS[preset]
    elif not isinstance(preset, AtariPreset):
        raise TypeError(f"preset must be a name in {sorted(PRESETS)} or an AtariPreset, got {preset!r}")
    fields = {field.name for field in dataclasses.fields(AtariPreset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown preset settings {unknown}; expected some of {sorted(fields)}")
    return dataclasses.replace(preset, **overrides)


def wrap_atari(env: gym.Env, preset: str | AtariPreset = "dqn", **overrides: Any) -> gym.Env:
    """Apply a preset's wrappers to an ALE env without frame skip (e.g. ``PongNoFrameskip-v4``).

    RGB base envs are converted to gray with :class:`~wrappers.image.GrayscaleObservation`
    when the preset wants gray frames; a ``obs_type="grayscale"`` env skips that step.

    Example:
        >>> import ale_py.env
        >>> env = wrap_atari(ale_py.env.AtariEnv("pong", frameskip=1, repeat_action_probability=0.0))
        >>> env.observation_space
        Box(0, 255, (4, 84, 84), uint8)
    """
    settings = _preset_with(preset, overrides)
    if settings.noop_max > 0:
        env = atari.NoopReset(env, noop_max=settings.noop_max)
    if settings.frame_skip > 1:
        env = atari.MaxAndSkipObservation(env, skip=settings.frame_skip)
    if settings.episodic_life:
        env = atari.EpisodicLife(env)
    meanings = env.unwrapped.get_action_meanings()
    if settings.fire_reset and len(meanings) >= 3 and meanings[1] == "FIRE":
        env = atari.FireReset(env)
    is_rgb = len(env.observation_space.shape) == 3
    if settings.grayscale and is_rgb:
        env = image.GrayscaleObservation(env)
    env = image.ResizeObservation(env, shape=settings.screen_size)
    if settings.clip_reward:
        env = atari.ClipReward(env)
    if not settings.grayscale:
        env = image.ChannelFirstObservation(env)
    if settings.grayscale or settings.frame_stack > 1:
        # Gray (H, W) frames get their channel axis from the stack, also for a stack of 1.
        env = frame_stack.FrameStackObservation(env, num_stack=settings.frame_stack)
    if settings.scale:
        env = image.ScaleObservation(env)
    return env


def make_atari_env(
    game_or_id: str = "Pong", preset: str | AtariPreset = "dqn", render_mode: str | None = None, **overrides: Any
) -> gym.Env:
    """Build a preprocessed ALE game; the entry point of ``agents_zoo/<Game>-<preset>-v0``.

    ``preset`` is ``"dqn"``, ``"gan"`` or an :class:`AtariPreset`; keyword ``overrides``
    replace single settings (``noop_max=0``, ``screen_size=64``, ...). A preset named in
    ``game_or_id`` (``"agents_zoo/Pong-gan-v0"``) wins over the ``preset`` argument.

    Example:
        >>> env = make_atari_env("Pong", preset="gan")
        >>> env.observation_space
        Box(0.0, 1.0, (3, 64, 64), float32)
        >>> make_atari_env("agents_zoo/Breakout-dqn-v0", frame_stack=2).observation_space.shape
        (2, 84, 84)
    """
    rom_id, preset_in_id = resolve_game(game_or_id)
    settings = _preset_with(preset_in_id or preset, overrides)
    try:
        from ale_py.env import AtariEnv
    except ImportError as error:
        raise gym.error.DependencyNotInstalled("Atari envs need ale-py: pip install 'ale-py>=0.9'") from error
    base_env = AtariEnv(
        game=rom_id,
        # Gray screens straight from the emulator: no RGB copy and conversion per frame.
        obs_type="grayscale" if settings.grayscale else "rgb",
        frameskip=1,
        repeat_action_probability=settings.repeat_action_probability,
        full_action_space=settings.full_action_space,
        max_num_frames_per_episode=settings.max_num_frames_per_episode,
        render_mode=render_mode,
    )
    return wrap_atari(base_env, settings)


BACKENDS = ("auto", "python", "ale")
"""Vector env backends of :func:`make_atari_vector_env`."""


def make_atari_vector_env(
    game_or_id: str,
    num_envs: int,
    preset: str | AtariPreset = "dqn",
    *,
    backend: str = "python",
    num_threads: int | None = None,
    **overrides: Any,
) -> gym.vector.VectorEnv:
    """``num_envs`` preprocessed copies of a game, resetting ended episodes in the same step.

    Seed it with ``reset(seed=...)``. ``backend``:

    - ``"python"`` (default): a ``SyncVectorEnv`` of :func:`make_atari_env` (our wrapper chain,
      SB3's ``AtariWrapper`` semantics). Synchronous on purpose: on a 2-core machine one emulator
      step is cheaper than a process hop.
    - ``"ale"``: ale-py's C++ ``AtariVectorEnv`` (ale-py >= 0.12), whose threads step the
      emulators while Python runs on; same observations (shape, dtype, layout, pixels), rewards
      and flags within an episode, a different reset sequence (see :mod:`wrappers.ale_vector`).
      ``num_threads`` sets its thread count. Raises when ale-py is too old or a setting does not fit.
    - ``"auto"``: ``"ale"`` when it is available and takes the settings, else ``"python"``.

    The default stays ``"python"`` because the C++ env cannot express the preset's reset: it
    presses FIRE before its no-ops instead of after, and continues after a lost life without
    the chain's no-op + FIRE, so in Breakout the agent must relaunch the ball itself. Opting in
    changes what the agent sees at episode starts, not within episodes (tests/test_ale_vector.py).

    Example:
        >>> envs = make_atari_vector_env("Pong", num_envs=2)
        >>> envs.reset(seed=0)[0].shape
        (2, 4, 84, 84)
        >>> make_atari_vector_env("Pong", num_envs=2, backend="python").single_observation_space
        Box(0, 255, (4, 84, 84), uint8)
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if num_threads is not None and backend == "python":
        raise ValueError("num_threads sets the threads of the 'ale' backend; the 'python' backend has none")
    if backend != "python":
        from wrappers import ale_vector

        rom_id, preset_in_id = resolve_game(game_or_id)
        settings = _preset_with(preset_in_id or preset, overrides)
        try:
            return ale_vector.make_ale_vector_env(rom_id, num_envs, settings, num_threads=num_threads)
        except (ale_vector.AleVectorUnavailable, ale_vector.UnsupportedAtariSettings):
            if backend == "ale":
                raise

    factory = functools.partial(make_atari_env, game_or_id, preset, **overrides)
    return autoreset.sync_vector_env([factory] * num_envs)
