"""Typed, validated settings dataclasses.

:class:`Config` is the one style of settings in the project: fields declared with
``field(default, doc=...)`` (the doc is shown by ``--list-config``), checked in ``validate()``,
which runs on construction, so a bad value fails at once with a ``ValueError`` that names the
field, the value and what was expected. ``from_dict`` refuses unknown keys with the closest
known name and values of the wrong JSON type; ``to_dict`` is what a file saves.

:class:`AgentConfig` is the settings of every agent (one subclass per agent feeds the Python API,
the CLI's ``--config key=value``, the benchmark harness and the saved ``config.json``); the
generative models' configs subclass :class:`Config` directly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, ClassVar, TypeVar

from agents_zoo.core.suggest import did_you_mean

ConfigT = TypeVar("ConfigT", bound="Config")


def field(default: Any = dataclasses.MISSING, *, doc: str, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a one-line docstring (shown by ``--list-config``)."""
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclasses.dataclass
class Config:
    """Typed settings: subclasses declare fields with :func:`field` and check them in ``validate()``."""

    def __post_init__(self) -> None:
        # Coerce lists from JSON back to tuples so saved and fresh configs compare equal.
        hints = self._hints()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _is_tuple_type(hints[f.name]) and isinstance(value, list):
                setattr(self, f.name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise a one-line ``ValueError`` naming the first bad setting; subclasses extend it."""

    # ------------------------------------------------------------------ conversions
    @classmethod
    def _hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build from a dict, rejecting unknown keys with the closest known name."""
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__} expects a dict of settings, got {type(values).__name__}")
        known = cls.field_names()
        for key in values:
            if key not in known:
                hint = did_you_mean(key, known)
                raise ValueError(f"unknown setting {key!r} for {cls.__name__}{hint} Known settings: {', '.join(known)}")
        hints = cls._hints()
        checked = {key: _check_type(cls.__name__, key, value, hints[key]) for key, value in values.items()}
        return cls(**checked)

    @classmethod
    def upgrade_saved(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Rewrite settings saved by an older release (a field renamed or replaced since) into
        today's; :meth:`from_saved` calls it. Nothing to rewrite by default."""
        return values

    @classmethod
    def from_saved(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build from settings read back from a file: :meth:`upgrade_saved`, then :meth:`from_dict`."""
        if isinstance(values, dict):
            values = cls.upgrade_saved(dict(values))
        return cls.from_dict(values)

    @classmethod
    def build(cls: type[ConfigT], config: "Config | dict[str, Any] | None" = None, **overrides: Any) -> ConfigT:
        """Accept a config object, a dict or nothing, plus keyword overrides."""
        if config is None:
            base: dict[str, Any] = {}
        elif isinstance(config, cls):
            base = config.to_dict()
        elif isinstance(config, Config):
            raise TypeError(f"expected a {cls.__name__}, got a {type(config).__name__}")
        else:
            base = dict(config)
        base.update(overrides)
        return cls.from_dict(base)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        return self.build(self, **changes)

    @classmethod
    def parse_cli_value(cls, key: str, text: str) -> Any:
        """Turn a ``--config key=value`` string into the field's type."""
        hints = cls._hints()
        if key not in hints:
            cls.from_dict({key: None})  # raises the unknown-key error with a suggestion
        hint = hints[key]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare word, e.g. activation=relu
        if _is_tuple_type(hint) and isinstance(value, (int, float)):
            value = [value]
        if _base_type(hint) is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return value

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any]]:
        """(name, doc, default) for each field, for ``--help`` texts."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((f.name, f.metadata.get("doc", ""), default))
        return rows


@dataclasses.dataclass
class AgentConfig(Config):
    """Settings shared by every agent."""

    n_envs: int = field(1, doc="number of environments stepped together in one vector env")
    policy_hidden_sizes: tuple[int, ...] = field((64, 64), doc="hidden layer sizes of the MLP networks")
    activation: str = field("tanh", doc="activation of the MLP hidden layers: tanh or relu")
    detect_nonfinite: bool = field(False, doc="stop with the step number if an observation or reward is NaN/inf")
    compute_dtype: str = field("auto", doc="math of image (Nature CNN) networks: auto (default): bfloat16 where the "
                                           "hardware has native bf16, else float32; bfloat16 (float32 weights, heads "
                                           "and losses, bf16 convolutions: for CPUs with AVX512_BF16/AMX and Ampere+ "
                                           "GPUs); float32")

    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("tanh", "relu", "elu", "gelu")
    COMPUTE_DTYPES: ClassVar[tuple[str, ...]] = ("float32", "bfloat16", "auto")

    def validate(self) -> None:
        check_int(self, "n_envs", minimum=1)
        check_int_tuple(self, "policy_hidden_sizes")
        check_choice(self, "activation", self.ACTIVATIONS)
        check_choice(self, "compute_dtype", self.COMPUTE_DTYPES)
        check_bool(self, "detect_nonfinite")


# ---------------------------------------------------------------------- checks used by subclasses
def check_number(cfg: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 exclusive_min: bool = False, exclusive_max: bool = False) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    low_ok = minimum is None or (value > minimum if exclusive_min else value >= minimum)
    high_ok = maximum is None or (value < maximum if exclusive_max else value <= maximum)
    if not (low_ok and high_ok):
        low = "" if minimum is None else ("(" if exclusive_min else "[") + f"{minimum}"
        high = "" if maximum is None else f"{maximum}" + (")" if exclusive_max else "]")
        expected = f"in {low or '(-inf'}, {high or 'inf)'}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def check_positive(cfg: Any, name: str) -> None:
    check_number(cfg, name, minimum=0, exclusive_min=True)


def check_probability(cfg: Any, name: str) -> None:
    check_number(cfg, name, minimum=0.0, maximum=1.0)


def check_int(cfg: Any, name: str, *, minimum: int | None = None) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def check_bool(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def check_choice(cfg: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_optional(cfg: Any, name: str, check: Any, **kwargs: Any) -> None:
    if getattr(cfg, name) is not None:
        check(cfg, name, **kwargs)


def check_int_tuple(cfg: Any, name: str, *, length: int | None = None, non_empty: bool = False,
                    layout: str | None = None) -> None:
    """``name`` must be a tuple of positive ints (exactly ``length`` of them if given); ``layout``
    (e.g. ``"(C, H, W)"``) says what they mean in the error."""
    value = getattr(cfg, name)
    valid = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if valid and length is not None:
        valid = len(value) == length
    if valid and non_empty:
        valid = len(value) > 0
    if not valid:
        expected = (f"a tuple of {length} positive ints" if length is not None
                    else f"a {'non-empty ' if non_empty else ''}tuple of positive ints")
        raise ValueError(f"{name} must be {layout + ', ' if layout else ''}{expected}, got {value!r}")


# ---------------------------------------------------------------------- type plumbing
def _base_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else hint
    return origin or hint


def _is_tuple_type(hint: Any) -> bool:
    return _base_type(hint) is tuple


# The largest magnitude an int setting may have: every count, size and seed ends up in a NumPy
# or TensorFlow int64 (a larger one would raise OverflowError deep inside them).
MAX_INT_SETTING = 2**63 - 1


def check_json_numbers(key: str, value: Any) -> None:
    """Refuse a non-finite float or an int beyond int64 anywhere in ``value`` (a setting read
    from JSON: a number, or lists of them), with a ``ValueError`` naming ``key``.

    JSON as Python reads and writes it holds ``NaN``, ``Infinity`` and ints of any size: a saved
    config with ``Infinity`` where an int is due, or ``2**70``, would otherwise fail later as an
    ``OverflowError`` that names neither the setting nor the file.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{key} must be a finite number, got {item!r}")
        if isinstance(item, int) and abs(item) > MAX_INT_SETTING:
            raise ValueError(f"{key} must be at most {MAX_INT_SETTING} in magnitude (a 64-bit int), "
                             f"got a number of {item.bit_length()} bits")
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def _check_type(owner: str, key: str, value: Any, hint: Any) -> Any:
    """Reject values whose type cannot be the field's (a string where a number is due, ...)."""
    check_json_numbers(key, value)
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key} of {owner} must not be None")
    base = _base_type(hint)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if base is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an int, got {value!r} ({type(value).__name__})")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if base is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r} ({type(value).__name__})")
        return value
    if base is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {value!r} ({type(value).__name__})")
        return tuple(value)
    return value


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
