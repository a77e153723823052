"""Variables saved by name: one stable path per variable, matched by name on load.

A saved model or optimizer stores each variable under ``<prefix>/<path>``, the path of
attribute names from the saved object down to the variable, as PyTorch's ``state_dict`` keys
are (SB3 matches those by name too)::

    q_net/trunk/hidden/000/kernel      a Keras model: attributes, list items, the weight's name
    policy/params                      a tf.Module: its attributes
    optimizer/first_moments/003        TorchStyleOptimizer: one slot per trained variable, in order
    discriminator/layers/002/kernel    a functional model: layers by index (they have no attributes)

Keras' own ``variable.path`` would not do: layers named automatically take a process-wide
counter (``dense_7``), so the same model gets other paths in another process. Loading matches
the names both ways, so a layout change cannot mismatch silently: a missing or unexpected name
is refused in one line naming them.

Files saved before this layout hold each object's variables BY POSITION, ``<prefix>/000``,
``<prefix>/001``, ... in the order of ``obj.variables``. The arrays themselves tell the layouts
apart, per object: an object whose arrays are all named by a number is read by position, in
that old order (``assign_by_position``, the code of those releases), any other by name. No name
given here is a number, so the two cannot be confused, and the test holds for files re-packed
without their metadata and for the positional output of a layout-upgrade shim
(``DQN._upgrade_saved_arrays``). New files also say ``variable_layout: names`` in their metadata,
for whoever reads them.

A foundation module: TensorFlow and Keras are imported by the functions that walk their objects
(there are none to walk before they are imported), so agents without networks stay light.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np

LAYOUT_KEY = "variable_layout"  # in an archive's metadata: NAMES; absent in files of the positional layout
NAMES = "names"
_POSITION = re.compile(r"^\d+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SHOWN = 6  # names listed in a mismatch message before "and N more"


def _keras_and_tensorflow() -> tuple[Any, Any]:
    import keras
    import tensorflow as tf

    return keras, tf


def _join(path: str, part: Any) -> str:
    part = f"{part:03d}" if isinstance(part, int) else _UNSAFE.sub("_", str(part)) or "_"
    return f"{path}/{part}" if path else part


def named_variables(obj: Any, variables: Iterable[Any] | None = None) -> dict[str, Any]:
    """``obj``'s variables (or the given ones among them) by their saved name, in ``variables`` order.

    A Keras layer names its own weights by their weight name (``kernel``), its seed generators
    ``seed_generators/<i>/state``, its sublayers by the public attribute holding them (items of
    a list or tuple by index, of a dict by key) and the sublayers no attribute holds (functional
    and sequential models) ``layers/<i>``. A ``tf.Module`` names what its public attributes hold.
    Attributes are visited in sorted order; a variable reachable twice keeps its first name. One
    that no path reaches (not seen in this project's models) is named ``unnamed/<its index>``.
    """
    keras, tf = _keras_and_tensorflow()
    variable_types = (tf.Variable, keras.Variable)
    containers = (list, tuple, dict, keras.layers.Layer, tf.Module, *variable_types)
    targets = list(obj.variables if variables is None else variables)
    wanted = {id(variable) for variable in targets}
    names: dict[int, str] = {}
    taken: set[str] = set()
    visited: set[int] = set()

    def claim(variable: Any, path: str) -> None:
        if id(variable) not in wanted or id(variable) in names:
            return
        if _POSITION.match(path.split("/", 1)[0]):  # a weight named "0": never read as a position
            path = "_" + path
        name, copy = path, 1
        while name in taken:  # two weights of one layer given the same name
            name, copy = f"{path}_{copy}", copy + 1
        names[id(variable)] = name
        taken.add(name)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, variable_types):
            claim(node, path)
            return
        if id(node) in visited:
            return
        if isinstance(node, (list, tuple)):
            visited.add(id(node))
            for index, item in enumerate(node):
                walk(item, _join(path, index))
        elif isinstance(node, dict):
            visited.add(id(node))
            for key in sorted(node, key=str):
                walk(node[key], _join(path, key))
        elif isinstance(node, keras.layers.Layer):
            visited.add(id(node))
            for variable in [*node._trainable_variables, *node._non_trainable_variables]:
                claim(variable, _join(path, variable.name))
            for index, generator in enumerate(getattr(node, "_seed_generators", [])):
                claim(generator.state, _join(_join(_join(path, "seed_generators"), index), "state"))
            walk_attributes(node, path)
            for index, layer in enumerate(node._layers):
                walk(layer, _join(_join(path, "layers"), index))
        elif isinstance(node, tf.Module):
            visited.add(id(node))
            walk_attributes(node, path)

    def walk_attributes(node: Any, path: str) -> None:
        for key, value in sorted(vars(node).items()):
            if not key.startswith("_") and isinstance(value, containers):
                walk(value, _join(path, key))

    walk(obj, "")
    named = {}
    for index, variable in enumerate(targets):
        name = names.get(id(variable)) or _join("unnamed", index)
        named[name] = variable
    return named


def variables_to_arrays(prefix: str, obj: Any, variables: Iterable[Any] | None = None) -> dict[str, np.ndarray]:
    """``{"<prefix>/<name>": value}`` for every variable of ``obj`` (or the given ones)."""
    return {f"{prefix}/{name}": np.asarray(variable.numpy())
            for name, variable in named_variables(obj, variables).items()}


def is_positional(prefix: str, arrays: dict[str, np.ndarray]) -> bool:
    """Whether ``arrays`` holds ``prefix``'s variables in the positional layout: every name under
    ``prefix/`` goes on with a number (``prefix/000``; generative models ``weights/0000/<path>``)."""
    keys = [key[len(prefix) + 1:].split("/", 1)[0] for key in arrays if key.startswith(prefix + "/")]
    return bool(keys) and all(_POSITION.match(key) for key in keys)


def converted_value(key: str, variable: Any, value: np.ndarray, label: str | None = None) -> np.ndarray:
    """``value`` as ``variable``'s dtype, refusing another shape, non-numbers, or a float beyond its range."""
    label = label or key
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{key} has dtype {value.dtype}; expected numbers")
    if tuple(value.shape) != tuple(variable.shape):
        raise ValueError(f"{label} has shape {tuple(variable.shape)} but the file holds {tuple(value.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
        converted = value.astype(variable.dtype.name if hasattr(variable.dtype, "name") else variable.dtype)
    if converted.dtype.kind == "f" and not np.all(np.isfinite(converted)):
        # finite in the file (checked on load) but beyond the variable's float range
        raise ValueError(f"{key} holds values beyond the range of {converted.dtype}")
    return converted


def assign_by_position(prefix: str, obj: Any, arrays: dict[str, np.ndarray]) -> None:
    """The positional layout: ``prefix/000``, ``prefix/001``, ... in the order of ``obj.variables``."""
    variables = list(obj.variables)
    saved = sorted(key for key in arrays if key.rsplit("/", 1)[0] == prefix)
    if len(saved) != len(variables):
        raise ValueError(f"{prefix!r} has {len(variables)} variables but the file holds {len(saved)}")
    for index, variable in enumerate(variables):
        key = f"{prefix}/{index:03d}"
        label = f"{key} ({variable.path if hasattr(variable, 'path') else variable.name})"
        variable.assign(converted_value(key, variable, arrays[key], label))


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def name_mismatch(expected: Iterable[str], saved: Iterable[str]) -> str | None:
    """One line naming the expected names the file lacks and the names it holds that nothing expects."""
    expected, saved = list(expected), set(saved)
    missing = [name for name in expected if name not in saved]
    unexpected = sorted(saved.difference(expected))
    if not missing and not unexpected:
        return None
    parts = ([f"missing {_listed(missing)}"] if missing else []) + (
        [f"unexpected {_listed(unexpected)}"] if unexpected else [])
    return "; ".join(parts)


def checked_by_name(groups: dict[str, dict[str, Any]],
                    arrays: dict[str, np.ndarray]) -> list[tuple[Any, np.ndarray]]:
    """(variable, value) pairs for ``arrays["<prefix>/<name>"]``, all checked, none assigned.

    ``groups`` maps a prefix to ``named_variables(obj)``. The arrays under those prefixes and
    the variables must match by name both ways (else one ``ValueError`` line names what is
    missing and what is unexpected), then every shape, dtype and range must fit.
    """
    expected = [f"{prefix}/{name}" for prefix, named in groups.items() for name in named]
    saved = [key for key in arrays if any(key.startswith(prefix + "/") for prefix in groups)]
    mismatch = name_mismatch(expected, saved)
    if mismatch:
        raise ValueError(f"variables do not match by name: {mismatch}")
    return [(variable, converted_value(f"{prefix}/{name}", variable, arrays[f"{prefix}/{name}"]))
            for prefix, named in groups.items() for name, variable in named.items()]


def restore(trainables: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Assign saved arrays to the variables of ``trainables`` (prefix -> object).

    An object whose arrays are all positional is read by position (files of earlier releases,
    an upgrade shim's output), any other by name; the names are checked before anything is assigned.
    """
    positional = [prefix for prefix in trainables if is_positional(prefix, arrays)]
    named = checked_by_name({prefix: named_variables(obj) for prefix, obj in trainables.items()
                             if prefix not in positional}, arrays)
    for prefix in positional:
        assign_by_position(prefix, trainables[prefix], arrays)
    for variable, value in named:
        variable.assign(value)
