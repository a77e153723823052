"""Checks of the arrays a saved model or checkpoint brings, before an agent assigns any of them.

A file's arrays are data someone else may have written: the loader's structural checks (an
``.npy`` header matching its bytes, a weight matching its variable's shape) say nothing of the
values. Assigned unchecked, NaN or inf weights load silently and evaluate to a meaningless
score; a replay buffer with NaN rewards, actions outside the action space or observations of
another shape poisons every later update, or fails deep inside a training step with an
``IndexError`` far from the file. So what is restored is checked like user input, and refused
with an :class:`ArchiveError` that names the file and the array:

- :func:`check_finite_arrays`: every float array (weights, optimizer state, normalization
  statistics, counters, replay contents, expert pairs) must be finite. The envs' episode state
  (``env_state/``, ``episode_state/``) is left to its own restore, which drops it, with a
  warning, when it is not finite (a bad episode costs a fresh episode, not the checkpoint).
- :func:`check_replay_arrays`: a replay buffer saved under ``replay/`` (the layouts of
  ``core.buffers.ReplayBuffer`` and ``agents.replay.FrameReplayBuffer``, told apart by their
  array names) must hold rewards that are finite numbers, terminations in {0, 1}, actions of
  the action space (Discrete: whole numbers in range; Box: finite, within the bounds),
  observations of the observation space's shape and kind (Discrete: whole numbers in range;
  uint8 images: uint8; vectors: finite numbers), flags that are booleans, and positions and
  counts consistent with the arrays' lengths.
- :func:`check_agent_counters`: DQN's step counters and exploration rate.

The buffers' own restore then checks capacities against the agent's config. The checks only
read the arrays, the large ones (observations, frames, rewards) in chunks of 2**20 elements, so
they cost a pass over the file's data and a few MiB of temporaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from agents_zoo.core.serialization import ArchiveError

# Arrays restored by ``core.env_state`` under its own allow-list (see ``BaseAgent._restore_env_state``).
ENV_STATE_PREFIXES = ("env_state/", "episode_state/")
REPLAY_PREFIX = "replay/"
# Elements checked per step: a check never allocates more than a few MiB of temporaries,
# however large the replay buffer.
_CHUNK = 2**20
# Box actions are stored as float32: a bound given in float64 may round outward by this much.
_BOUND_SLACK = 1e-5


class RestoredArrayError(ArchiveError):
    """An array of a saved model or checkpoint holds values it cannot hold (NaN, out of its space, ...)."""


def _fail(source: Any, name: str, problem: str) -> None:
    raise RestoredArrayError(f"{str(source)!r}: array {name!r} {problem}")


def _chunks(array: np.ndarray):
    flat = array.reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        yield start, flat[start: start + _CHUNK]


def _first_non_finite(array: np.ndarray) -> int | None:
    for start, chunk in _chunks(array):
        bad = ~np.isfinite(chunk)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def check_finite(name: str, array: np.ndarray, source: Any) -> None:
    """Refuse a float (or complex) array holding NaN or inf, naming its first bad element."""
    if array.dtype.kind not in "fc":
        return
    index = _first_non_finite(array)
    if index is not None:
        position = np.unravel_index(index, array.shape) if array.ndim else ()
        value = array.reshape(-1)[index]
        _fail(source, name, f"holds a non-finite value ({value}) at index {list(map(int, position))}; "
                            "expected finite numbers (a model with NaN or inf weights computes nothing meaningful)")


def check_finite_arrays(arrays: dict[str, np.ndarray], source: Any,
                        skip_prefixes: tuple[str, ...] = ENV_STATE_PREFIXES) -> None:
    """Every float array of a file must be finite, except those under ``skip_prefixes``."""
    for name in sorted(arrays):
        if not name.startswith(skip_prefixes):
            check_finite(name, arrays[name], source)


# ----------------------------------------------------------------------------- replay buffers
def _values(name: str, array: np.ndarray, source: Any, *, kinds: str, what: str) -> None:
    if array.dtype.kind not in kinds:
        _fail(source, name, f"has dtype {array.dtype}; expected {what}")


def _shape(name: str, array: np.ndarray, source: Any, shape: tuple[int, ...]) -> None:
    if tuple(array.shape) != tuple(shape):
        _fail(source, name, f"has shape {tuple(array.shape)}; expected {tuple(shape)}")


def _in_range(name: str, array: np.ndarray, source: Any, low: float, high: float, what: str) -> None:
    """Values within [low, high] (inclusive), checked chunk by chunk."""
    for start, chunk in _chunks(array):
        bad = (chunk < low) | (chunk > high)
        if array.dtype.kind in "fc":
            bad |= ~np.isfinite(chunk)
        if bad.any():
            index = start + int(np.argmax(bad))
            _fail(source, name, f"holds {chunk[index - start]} at flat index {index}; expected {what}")


def _whole(name: str, array: np.ndarray, source: Any, what: str) -> None:
    if array.dtype.kind == "f":
        for start, chunk in _chunks(array):
            bad = ~np.isfinite(chunk) | (chunk != np.round(chunk))
            if bad.any():
                index = start + int(np.argmax(bad))
                _fail(source, name, f"holds {chunk[index - start]} at flat index {index}; expected {what}")


def _check_flags(name: str, array: np.ndarray, source: Any) -> None:
    """Booleans: bool arrays, or numbers that are all 0 or 1."""
    _values(name, array, source, kinds="biuf", what="booleans (0 or 1)")
    if array.dtype.kind != "b":
        for start, chunk in _chunks(array):
            bad = (chunk != 0) & (chunk != 1)
            if bad.any():
                index = start + int(np.argmax(bad))
                _fail(source, name, f"holds {chunk[index - start]} at flat index {index}; expected 0 or 1")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_rewards(name: str, rewards: np.ndarray, source: Any, shape: tuple[int, ...]) -> None:
    _values(name, rewards, source, kinds="iuf", what="numbers")
    _shape(name, rewards, source, shape)
    check_finite(name, rewards, source)
    # The buffers keep rewards as float32: a finite float64 beyond its range would become inf.
    _in_range(name, rewards, source, -_FLOAT32_MAX, _FLOAT32_MAX, "finite rewards within float32 range")


def _check_items(name: str, array: np.ndarray, space: spaces.Space, source: Any, role: str,
                 leading: tuple[int, ...]) -> None:
    """``array`` has shape ``leading`` (the batch axes) + the space's shape, and holds its items."""
    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start) + int(space.n) - 1
        what = f"whole numbers in [{low}, {high}] ({role} space {space})"
        _values(name, array, source, kinds="iuf", what=what)
        _shape(name, array, source, leading)
        _whole(name, array, source, what)
        _in_range(name, array, source, low, high, what)
        return
    if not isinstance(space, spaces.Box):
        _fail(source, name, f"belongs to a {role} space {space} that a replay buffer cannot hold")
    item_shape = tuple(space.shape)
    _shape(name, array, source, (*leading, *item_shape))
    if np.dtype(space.dtype) == np.uint8:
        _values(name, array, source, kinds="u", what=f"uint8, as the {role} space {space}")
        if array.dtype != np.uint8:
            _fail(source, name, f"has dtype {array.dtype}; expected uint8, as the {role} space {space}")
        return
    _values(name, array, source, kinds="iuf", what=f"numbers of the {role} space {space}")
    # Stored as float32: a finite float64 beyond float32's range would become inf in the buffer.
    _in_range(name, array, source, -_FLOAT32_MAX, _FLOAT32_MAX,
              f"finite numbers within float32 range ({role} space {space})")
    if role == "action":
        # Actions are what the agent chose and the env accepted: inside the bounds. (Observations
        # are not held to theirs: gymnasium lets envs emit observations outside their Box.)
        low = np.asarray(space.low, dtype=np.float64)
        high = np.asarray(space.high, dtype=np.float64)
        slack = _BOUND_SLACK * np.maximum(1.0, np.maximum(np.abs(np.where(np.isfinite(low), low, 0.0)),
                                                          np.abs(np.where(np.isfinite(high), high, 0.0))))
        items = array.reshape(-1, *item_shape) if item_shape else array.reshape(-1)
        outside = (items < low - slack) | (items > high + slack)
        if outside.any():
            index = int(np.argmax(outside.reshape(len(items), -1).any(axis=1)))
            _fail(source, name, f"holds action {items[index].tolist()} (transition {index}) outside the "
                                f"action space {space}")


def _integers(name: str, arrays: dict[str, np.ndarray], source: Any, shape: tuple[int, ...],
              minimum: int = 0) -> np.ndarray:
    array = arrays[name]
    _values(name, array, source, kinds="iu", what="integers")
    _shape(name, array, source, shape)
    if array.size and int(array.min()) < minimum:
        _fail(source, name, f"holds {int(array.min())}; expected integers >= {minimum}")
    return array


def _require(arrays: dict[str, np.ndarray], prefix: str, names: tuple[str, ...], source: Any, layout: str) -> None:
    missing = [prefix + name for name in names if prefix + name not in arrays]
    if missing:
        _fail(source, missing[0], f"is missing: a {layout} replay buffer needs {', '.join(names)} under {prefix!r}")


def check_replay_arrays(arrays: dict[str, np.ndarray], observation_space: spaces.Space,
                        action_space: spaces.Space, source: Any, prefix: str = REPLAY_PREFIX) -> None:
    """Check a replay buffer saved in ``arrays`` (the archive's arrays, names as saved, under
    ``prefix``) against the spaces of the model it belongs to; do nothing if there is none.

    Raises :class:`RestoredArrayError` (an ``ArchiveError``) naming ``source`` and the array.
    """
    replay = {name: array for name, array in arrays.items() if name.startswith(prefix)}
    if not replay:
        return
    if prefix + "frames" in replay:
        _check_frame_replay(replay, observation_space, action_space, source, prefix)
    else:
        _check_vector_replay(replay, observation_space, action_space, source, prefix)
    _check_priorities(replay, source, prefix)


def _check_vector_replay(replay: dict[str, np.ndarray], observation_space: spaces.Space,
                         action_space: spaces.Space, source: Any, p: str) -> None:
    """``core.buffers.ReplayBuffer``: one row per transition, ``position`` = [next write, size]."""
    _require(replay, p, ("observations", "next_observations", "actions", "rewards", "terminations", "position"),
             source, "vector")
    pos, size = (int(v) for v in _integers(p + "position", replay, source, (2,)))
    if pos > size and size:
        _fail(source, p + "position", f"holds next position {pos} beyond the {size} transitions stored")
    for name in ("observations", "next_observations"):
        _check_items(p + name, replay[p + name], observation_space, source, "observation", (size,))
    _check_items(p + "actions", replay[p + "actions"], action_space, source, "action", (size,))
    _check_rewards(p + "rewards", replay[p + "rewards"], source, (size,))
    _shape(p + "terminations", replay[p + "terminations"], source, (size,))
    _check_flags(p + "terminations", replay[p + "terminations"], source)
    if p + "ends" in replay:
        _shape(p + "ends", replay[p + "ends"], source, (size,))
        _check_flags(p + "ends", replay[p + "ends"], source)
    if p + "layout" in replay:
        _integers(p + "layout", replay, source, (1,), minimum=1)


def _check_frame_replay(replay: dict[str, np.ndarray], observation_space: spaces.Space,
                        action_space: spaces.Space, source: Any, p: str) -> None:
    """``agents.replay.FrameReplayBuffer``: per-env rings of slots, each holding the newest
    frame ``(C, H, W)`` of one observation ``(k * C, H, W)``; ``meta`` = [slots, used, padding]."""
    _require(replay, p, ("frames", "actions", "rewards", "terminations", "ages", "valid", "write_slot",
                         "episode_starts", "meta"), source, "frame")
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
        _fail(source, p + "frames", f"is a frame replay buffer, but the observation space {observation_space} "
                                    "is not a stack of images (k * C, H, W)")
    slots, used, padding = (int(v) for v in _integers(p + "meta", replay, source, (3,), minimum=-1))
    if not 0 <= used <= slots or padding not in (-1, 0, 1):
        _fail(source, p + "meta", f"holds slots={slots}, used={used}, padding={padding}; expected "
                                  "0 <= used <= slots and padding -1, 0 or 1")
    frames = replay[p + "frames"]
    if frames.ndim != 5:
        _fail(source, p + "frames", f"has shape {frames.shape}; expected (envs, slots, C, H, W)")
    n_envs, channels = frames.shape[0], frames.shape[2]
    stack_channels, height, width = observation_space.shape
    if channels < 1 or stack_channels % channels or frames.shape[3:] != (height, width) or n_envs < 1:
        _fail(source, p + "frames", f"has shape {frames.shape}; expected (envs, {used}, C, {height}, {width}) "
                                    f"with C dividing the {stack_channels} channels of {observation_space}")
    _shape(p + "frames", frames, source, (n_envs, used, channels, height, width))
    if frames.dtype != np.uint8:
        _fail(source, p + "frames", f"has dtype {frames.dtype}; expected uint8 frames")
    _check_items(p + "actions", replay[p + "actions"], action_space, source, "action", (n_envs, used))
    _check_rewards(p + "rewards", replay[p + "rewards"], source, (n_envs, used))
    for name in ("terminations", "valid"):
        _shape(p + name, replay[p + name], source, (n_envs, used))
        _check_flags(p + name, replay[p + name], source)
    ages = _integers(p + "ages", replay, source, (n_envs, used))
    stack = stack_channels // channels
    if ages.size and int(ages.max()) > stack - 1:
        _fail(source, p + "ages", f"holds {int(ages.max())}; expected ages below the stack of {stack} frames")
    write_slot = _integers(p + "write_slot", replay, source, (n_envs,))
    if write_slot.size and int(write_slot.max()) >= slots:
        _fail(source, p + "write_slot", f"holds slot {int(write_slot.max())}; expected slots below {slots}")
    _shape(p + "episode_starts", replay[p + "episode_starts"], source, (n_envs,))
    _check_flags(p + "episode_starts", replay[p + "episode_starts"], source)


def _check_priorities(replay: dict[str, np.ndarray], source: Any, p: str) -> None:
    if p + "priorities" in replay:
        priorities = replay[p + "priorities"]
        _values(p + "priorities", priorities, source, kinds="iuf", what="numbers")
        _in_range(p + "priorities", priorities, source, 0.0, np.inf, "finite priorities >= 0")
        if p + "max_priority" not in replay:
            _fail(source, p + "max_priority", "is missing; saved priorities need their maximum")
    if p + "max_priority" in replay:
        top = replay[p + "max_priority"]
        _values(p + "max_priority", top, source, kinds="iuf", what="a number")
        _shape(p + "max_priority", top, source, (1,))
        if not (np.isfinite(top).all() and float(top[0]) > 0):
            _fail(source, p + "max_priority", f"holds {top.tolist()}; expected one finite priority > 0")


# ----------------------------------------------------------------------------- counters
def check_agent_counters(arrays: dict[str, np.ndarray], source: Any) -> None:
    """DQN's ``dqn/counters`` (calls, pending target updates, updates) and exploration rate."""
    if "dqn/counters" in arrays:
        _integers("dqn/counters", arrays, source, (3,))
    if "dqn/exploration_rate" in arrays:
        rate = arrays["dqn/exploration_rate"]
        _values("dqn/exploration_rate", rate, source, kinds="f", what="a float")
        _shape("dqn/exploration_rate", rate, source, (1,))
        _in_range("dqn/exploration_rate", rate, source, 0.0, 1.0, "a probability in [0, 1]")


def check_restored_arrays(arrays: dict[str, np.ndarray], observation_space: spaces.Space,
                          action_space: spaces.Space, source: Any) -> None:
    """All checks of this module, as ``BaseAgent.load`` runs them before building the agent."""
    check_finite_arrays(arrays, source)
    check_replay_arrays(arrays, observation_space, action_space, source)
    check_agent_counters(arrays, source)
