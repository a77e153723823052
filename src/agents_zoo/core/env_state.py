"""Snapshots of a vector env's state, so a run resumed from a checkpoint continues the very
episodes it was in, and matches an uninterrupted run step for step.

Gymnasium has no state API, so we capture the plain data of every layer (vector env, wrappers,
the unwrapped env): numbers, strings, enum members, NumPy arrays (alone or in a list), sequences
of numbers and NumPy generators. That is the whole state of the classic-control envs and of the
usual wrappers (TimeLimit, OrderEnforcing, ...). An env holding anything else (a physics engine,
an emulator handle) is reported as not snapshotable, and a resumed run then starts fresh
episodes instead, with a seed derived from the step count. Nothing here uses pickle: the
snapshot is JSON + arrays.

What ``restore`` accepts from a file is an allow-list; the file only supplies values:

- The saved layers must be the live env's layers: the same classes in the same order.
- A saved field is restored only if ``snapshot`` would save that field from the live layer now:
  the live layer has an attribute of that name in its instance dict; the name is not a dunder,
  not ``render_mode`` and not one of the structure, configuration or rendering attributes that
  ``snapshot`` skips; the live value is not a space, not callable and of a snapshotable type.
- The saved value must be of the live value's kind: the same type (arrays: the same dtype and
  shape; lists: the same length and kinds of items), a member of the same enum, a state of the
  same bit generator; or, as episodes do, a number where the live value is ``None`` (not set
  yet), or the same count of numbers in another container (a Python or NumPy number, a list or
  a 1-D array). Never ``None`` over a live value, nor text where a number was.
- Only episode state may differ from the live env. A field is episode state when the layer's
  class or one of its bases assigns it (``self.x = ...``, ``self.x += ...``, ``self.x[i] = ...``,
  ``setattr(self, "x", ...)``) in a method other than ``__init__``: ``reset``, ``step`` and the
  methods they call to keep the episode going. Every other field is set up once when the env is made
  (physics constants, limits, modes) and is a constant of the env: its saved value must equal
  the live one. Where a class's source cannot be read, all its fields count as constants.

Anything else makes ``restore`` raise ``ValueError`` before it changes anything: every field is
checked first, then all are set, so a refused snapshot leaves the env exactly as it was.
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import textwrap
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

# Attributes that are structure, configuration or rendering, not episode state.
_SKIPPED = {
    "env", "envs", "env_fns", "spec", "_cached_spec", "metadata", "render_mode", "screen", "clock",
    "viewer", "isopen", "closed", "_ext_spec", "copy", "observation_space", "action_space",
    "single_observation_space", "single_action_space", "_observation_space", "_action_space",
    "_metadata", "_reward_range", "reward_range", "_saved_kwargs", "_kwargs", "_np_random_seed",
    "_actions",  # SyncVectorEnv: a transient iterator over the last actions
    "autoreset_mode",  # SyncVectorEnv (gymnasium >= 1.1): configuration, always SAME_STEP for our envs
    "_previous_data",  # PassiveEnvChecker (gymnasium 1.x): the first reset's data, kept for a one-off check
}
_SIMPLE = (bool, int, float, str, type(None))
_NUMPY_SCALARS = (np.integer, np.floating, np.bool_)


class NotSnapshotable(TypeError):
    """The env holds state that cannot be saved as plain data."""


def _layers(vec_env: VectorEnv) -> list[Any]:
    layers: list[Any] = [vec_env]
    for env in getattr(vec_env, "envs", None) or []:
        while True:
            layers.append(env)
            if not isinstance(env, gym.Wrapper):
                break
            env = env.env
    return layers


def _saved_fields(layer: Any) -> dict[str, Any]:
    """The attributes ``snapshot`` saves from a layer (and the only ones ``restore`` may set)."""
    return {name: value for name, value in vars(layer).items()
            if not (name in _SKIPPED or name.startswith("__") or isinstance(value, gym.Space) or callable(value))}


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, enum.Enum):
        return {"enum": value.name}
    if isinstance(value, _SIMPLE):
        return {"value": value}
    if isinstance(value, _NUMPY_SCALARS):
        return {"scalar": value.item(), "dtype": value.dtype.name}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NotSnapshotable(f"{key} is an object array")
        arrays[key] = value.copy()
        return {"array": key}
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state, "bit_generator": type(value.bit_generator).__name__}
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
        keys = []
        for i, item in enumerate(value):
            keys.append(_encode(item, f"{key}/{i}", arrays)["array"])
        return {"arrays": keys, "tuple": isinstance(value, tuple)}
    if isinstance(value, (list, tuple)) and all(isinstance(v, (*_SIMPLE, *_NUMPY_SCALARS)) for v in value):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        dtypes = [v.dtype.name if isinstance(v, np.generic) else None for v in value]
        return {"sequence": items, "dtypes": dtypes, "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and not value:
        return {"value": {}}
    raise NotSnapshotable(f"{key} has type {type(value).__name__}")


def snapshot(vec_env: VectorEnv) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able description, arrays) of the env's state; raises ``NotSnapshotable``."""
    arrays: dict[str, np.ndarray] = {}
    described = []
    for index, layer in enumerate(_layers(vec_env)):
        fields = {name: _encode(value, f"env_state/{index}/{name}", arrays)
                  for name, value in _saved_fields(layer).items()}
        described.append({"class": type(layer).__qualname__, "fields": fields})
    return {"layers": described}, arrays


# ----------------------------------------------------------------------------- restore
def restore(vec_env: VectorEnv, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Put a ``snapshot`` back; raises ``ValueError`` (changing nothing) for anything the
    module docstring does not allow: another env structure, unknown or skipped fields, values of
    another kind, or constants that differ from the live env's."""
    layers = _layers(vec_env)
    saved_layers = description.get("layers") if isinstance(description, dict) else None
    if not isinstance(saved_layers, list) or len(saved_layers) != len(layers):
        count = len(saved_layers) if isinstance(saved_layers, list) else 0
        raise ValueError(f"saved env state has {count} layers, the env has {len(layers)}")
    for layer, saved in zip(layers, saved_layers):
        if not isinstance(saved, dict) or not isinstance(saved.get("fields"), dict):
            raise ValueError(f"saved env layer must be an object with 'class' and 'fields', got {saved!r:.200}")
        if saved.get("class") != type(layer).__qualname__:
            raise ValueError(f"saved env layer {saved.get('class')!r} does not match {type(layer).__qualname__!r}")
    updates: list[tuple[Any, str, str, Any]] = []
    for layer, saved in zip(layers, saved_layers):
        live_fields = _saved_fields(layer)
        episode_fields = _episode_state_fields(type(layer))
        for name, encoded in saved["fields"].items():
            where = f"saved env field {type(layer).__qualname__}.{name!s:.100}"
            if not isinstance(name, str) or name not in live_fields:
                raise ValueError(f"{where} is not a field the env's snapshot holds; expected one of "
                                 f"{sorted(live_fields)}")
            live = live_fields[name]
            try:
                _encode(live, where, {})
            except NotSnapshotable:
                raise ValueError(f"{where}: the live value ({type(live).__name__}) is not plain data") from None
            kind, value = _decode_like(encoded, live, arrays, where)
            if name not in episode_fields and not _equal(kind, value, live):
                raise ValueError(f"{where} is a constant of the env (set only when it is made), not episode "
                                 f"state: the file holds {_short(kind, value)}, the live env {_short(kind, live)}")
            updates.append((layer, name, kind, value))
    for layer, name, kind, value in updates:
        if kind == "generator":
            getattr(layer, name).bit_generator.state = value  # in place: other holders keep the same RNG
        else:
            setattr(layer, name, value)


def _decode_like(encoded: Any, live: Any, arrays: dict[str, np.ndarray], where: str) -> tuple[str, Any]:
    """(kind, value) of a saved field, which must be of the live value's kind (module docstring)."""
    if not isinstance(encoded, dict) or len(encoded.keys() & _KINDS) != 1:
        raise ValueError(f"{where} is unreadable: {encoded!r:.200}")
    kind = next(iter(encoded.keys() & _KINDS))

    def mismatch() -> ValueError:
        return ValueError(f"{where} holds a {kind} ({encoded!r:.200}), but the live value is {type(live).__name__} "
                          f"{_short(kind, live)}; expected a value of the same kind")

    if kind == "enum":
        if not isinstance(live, enum.Enum) or not isinstance(encoded["enum"], str) \
                or encoded["enum"] not in type(live).__members__:
            raise mismatch()
        return kind, type(live)[encoded["enum"]]
    if kind == "generator":
        if not isinstance(live, np.random.Generator) or encoded.get("bit_generator") != type(live.bit_generator).__name__:
            raise mismatch()
        state = encoded["generator"]
        try:
            type(live.bit_generator)().state = state  # validated on a scratch generator first
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise ValueError(f"{where} holds an invalid {encoded['bit_generator']} state ({exc})") from None
        return kind, state
    if kind == "arrays":
        keys = encoded["arrays"]
        if (not isinstance(live, (list, tuple)) or not isinstance(keys, list) or len(keys) != len(live)
                or encoded.get("tuple") is not isinstance(live, tuple)
                or not all(isinstance(item, np.ndarray) for item in live)):
            raise mismatch()
        items = []
        for i, (key, item) in enumerate(zip(keys, live)):
            array = _saved_array(key, arrays, f"{where}[{i}]")
            if array.dtype != item.dtype or array.shape != item.shape:
                raise ValueError(f"{where}[{i}] is a {array.dtype} array of shape {array.shape}; expected "
                                 f"{item.dtype} of shape {item.shape} like the live env's")
            items.append(array.copy())
        return kind, tuple(items) if isinstance(live, tuple) else items
    value = _decode_data(kind, encoded, arrays, where)
    if not _compatible(value, live):
        if isinstance(value, np.ndarray) and isinstance(live, np.ndarray):
            raise ValueError(f"{where} is a {value.dtype} array of shape {value.shape}; expected {live.dtype} "
                             f"of shape {live.shape} like the live env's")
        raise mismatch()
    return kind, value.copy() if isinstance(value, np.ndarray) else value


_KINDS = {"enum", "value", "scalar", "array", "arrays", "generator", "sequence"}


def _decode_data(kind: str, encoded: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> Any:
    """A plain value, NumPy scalar, array or sequence, as written by ``_encode``."""
    if kind == "value":
        value = encoded["value"]
        if isinstance(value, _SIMPLE) or (isinstance(value, dict) and not value):
            return value
        raise ValueError(f"{where} holds {value!r:.100}; expected a plain value")
    if kind == "scalar":
        return _numpy_scalar(encoded.get("dtype"), encoded["scalar"], where)
    if kind == "array":
        return _saved_array(encoded["array"], arrays, where)
    items, dtypes = encoded["sequence"], encoded.get("dtypes")
    if not isinstance(items, list) or not isinstance(dtypes, list) or len(items) != len(dtypes):
        raise ValueError(f"{where} is an unreadable sequence: {encoded!r:.200}")
    values = []
    for i, (item, dtype) in enumerate(zip(items, dtypes)):
        if dtype is None:
            if not isinstance(item, _SIMPLE):
                raise ValueError(f"{where}[{i}] holds {item!r:.100}; expected a plain value")
            values.append(item)
        else:
            values.append(_numpy_scalar(dtype, item, f"{where}[{i}]"))
    return tuple(values) if encoded.get("tuple") is True else values


def _numpy_scalar(dtype: Any, value: Any, where: str) -> Any:
    try:
        dtype = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biuf":
        raise ValueError(f"{where} has dtype {dtype!r:.100}; expected a NumPy bool, int or float dtype")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (dtype.kind == "b" and isinstance(value, bool)):
            raise ValueError(f"{where} holds {value!r:.100}, expected a {dtype} number")
    try:
        return dtype.type(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{where} holds {value!r:.100}, not a {dtype} number ({exc})") from None


def _saved_array(key: Any, arrays: dict[str, np.ndarray], where: str) -> np.ndarray:
    array = arrays.get(key) if isinstance(key, str) else None
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise ValueError(f"{where} refers to the array {key!r:.100}, which the file does not hold")
    return array


def _numeric_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a number, or of a vector of numbers (an array or a list); None otherwise."""
    if isinstance(value, (bool, int, float, *_NUMPY_SCALARS)):
        return ()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.shape
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, *_NUMPY_SCALARS)) for v in value):
        return (len(value),)
    return None


def _compatible(value: Any, live: Any) -> bool:
    """Whether an episode may have left ``value`` where the live env holds ``live``.

    The same type (arrays: dtype and shape; sequences: length and items); a number where the
    live value is None (not set yet, like Pendulum's last action); or the same count of numbers
    in another container (a number as a NumPy scalar, a state vector as a list where reset
    made an array, as seals' CartPole does). Never None over a live value: code that counts
    (``self._elapsed_steps += 1``) would fail on it.
    """
    if type(value) is type(live):
        if isinstance(live, np.ndarray):
            return value.dtype == live.dtype and value.shape == live.shape
        if isinstance(live, (list, tuple)):
            return len(value) == len(live) and all(_compatible(a, b) for a, b in zip(value, live))
        return not isinstance(live, dict) or (not value and not live)
    if live is None:
        return _numeric_shape(value) == ()
    shape = _numeric_shape(value)
    return shape is not None and len(shape) <= 1 and shape == _numeric_shape(live)


def _equal(kind: str, value: Any, live: Any) -> bool:
    if kind == "generator":
        return value == live.bit_generator.state
    if type(value) is not type(live):
        return False  # a constant never changes its kind
    if isinstance(value, np.ndarray):
        return bool(np.array_equal(value, live, equal_nan=value.dtype.kind in "fc"))
    if isinstance(value, (list, tuple)):
        return len(value) == len(live) and all(_equal("value", a, b) for a, b in zip(value, live))
    if isinstance(value, (float, np.floating)) and value != value and live != live:
        return True  # both NaN
    return bool(value == live)


def _short(kind: str, value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {np.array2string(value.ravel()[:4], threshold=4)}"
    if kind == "generator":
        return "an RNG state"
    return f"{value!r:.80}"


@functools.lru_cache(maxsize=None)
def _episode_state_fields(cls: type) -> frozenset[str]:
    """Attributes that ``cls`` or a base class assigns in a method other than ``__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError, IndentationError):
            continue  # no source (a compiled class): its fields count as constants
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name != "__init__":
                        names |= _assigned_attributes(item)
    return frozenset(names)


def _assigned_attributes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    arguments = function.args.posonlyargs + function.args.args
    if not arguments:
        return set()
    self_name = arguments[0].arg

    def root(target: ast.AST) -> str | None:
        # self.x, self.x[i], self.x.y, self.x[i][j] -> "x"
        while isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == self_name:
                return target.attr
            target = target.value
        return None

    def targets(node: ast.AST) -> list[ast.AST]:
        if isinstance(node, ast.Assign):
            found = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            found = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found = [node.optional_vars]
        else:
            return []
        flat: list[ast.AST] = []
        while found:
            item = found.pop()
            if isinstance(item, (ast.Tuple, ast.List)):
                found.extend(item.elts)
            else:
                flat.append(item)
        return flat

    names = set()
    for node in ast.walk(function):
        for target in targets(node):
            name = root(target)
            if name is not None:
                names.add(name)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == self_name
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            names.add(node.args[1].value)
    return names
