"""Space handling: which spaces an agent supports, image detection, and JSON round trips.

Saved models carry their spaces as JSON (never pickled gymnasium objects), so a model loads
and predicts without its environment.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from gymnasium import spaces


class UnsupportedSpaceError(TypeError):
    """An agent was given an observation or action space it cannot handle."""


# Largest spaces a saved file may declare. Building an agent allocates per space element before
# any weight is read (Box bounds, dummy batches, one-hot rows, conv activations), so these bound
# what a small crafted file can make the loader allocate. They sit far above any env this
# project runs: the largest Discrete spaces are toy-text observations (Taxi: 500 states) and
# Atari actions (18); the largest Box is a raw Atari RGB frame (210 x 160 x 3 = 100,800
# elements). 2**20 states and 2**22 elements (a 1182 x 1182 RGB image; 32 MiB per float64 bound)
# leave a 40x margin and keep what one space can cost at tens of MiB.
MAX_SAVED_DISCRETE_N = 2**20
MAX_SAVED_BOX_ELEMENTS = 2**22


def is_image_space(space: spaces.Space) -> bool:
    """A uint8 Box of rank 3, channel-first (C, H, W) as our Atari wrappers produce, or HWC."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def image_is_channel_first(space: spaces.Box) -> bool:
    # Channel-first when the first axis is a small channel count and the last is not.
    return space.shape[0] <= 16 and space.shape[-1] > 16


def check_space(agent: str, role: str, space: spaces.Space, allowed: tuple[type, ...],
                supporting: Callable[[], dict[str, tuple[str, ...]]] | None = None) -> None:
    """Raise ``UnsupportedSpaceError`` naming the space, what is allowed and who supports it.

    ``supporting`` returns agent name -> space type names; called only on the error path.
    """
    if isinstance(space, allowed):
        if isinstance(space, spaces.Box) and not np.issubdtype(space.dtype, np.number):
            raise UnsupportedSpaceError(f"{agent} needs a numeric {role} space, got {space}")
        return
    names = ", ".join(cls.__name__ for cls in allowed)
    hint = ""
    if supporting:
        others = [name for name, kinds in supporting().items() if type(space).__name__ in kinds]
        if others:
            hint = f"; agents that support it: {', '.join(sorted(others))}"
    raise UnsupportedSpaceError(f"{agent} does not support the {role} space {space} (expected {names}){hint}")


def flat_dim(space: spaces.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    raise UnsupportedSpaceError(f"no flat size for space {space}")


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bound_to_json(space.low),
            "high": _bound_to_json(space.high),
        }
    raise UnsupportedSpaceError(f"cannot describe space {space} as JSON (only Discrete and Box)")


def space_from_json(data: Any) -> spaces.Space:
    if not isinstance(data, dict) or data.get("type") not in ("Discrete", "Box"):
        raise ValueError(f"a saved space must be a dict with type Discrete or Box, got {data!r}")
    if data["type"] == "Discrete":
        n, start = data.get("n"), data.get("start", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or not isinstance(start, int):
            raise ValueError(f"a saved Discrete space needs a positive int n, got {data!r}")
        if n > MAX_SAVED_DISCRETE_N:
            raise ValueError(f"a saved Discrete space has n={n}; expected at most {MAX_SAVED_DISCRETE_N}")
        if not -(2**62) <= start <= 2**62:
            raise ValueError(f"a saved Discrete space has start={start}; expected a 64-bit int")
        return spaces.Discrete(n, start=start)
    shape = data.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"a saved Box space needs a list of positive ints as shape, got {shape!r}")
    # Checked before the bounds are built: the product, not the JSON, decides what they cost.
    if math.prod(shape) > MAX_SAVED_BOX_ELEMENTS:
        raise ValueError(f"a saved Box space has shape {shape} ({math.prod(shape)} elements); expected at most "
                         f"{MAX_SAVED_BOX_ELEMENTS} elements")
    dtype = data.get("dtype")
    if dtype not in ("float32", "float64", "uint8", "int8", "int16", "int32", "int64", "float16"):
        raise ValueError(f"a saved Box space has unsupported dtype {dtype!r}")
    low = _bound_from_json(data.get("low"), shape, dtype)
    high = _bound_from_json(data.get("high"), shape, dtype)
    return spaces.Box(low=low, high=high, shape=tuple(shape), dtype=np.dtype(dtype))


def _bound_to_json(bound: np.ndarray) -> Any:
    # One number when the bound is uniform keeps image spaces tiny in the manifest.
    flat = np.asarray(bound, dtype=np.float64).ravel()
    if flat.size and np.all(flat == flat[0]):
        return _finite_or_str(flat[0])
    return [_finite_or_str(v) for v in flat]


def _finite_or_str(value: float) -> Any:
    if np.isfinite(value):
        return float(value)
    return "inf" if value > 0 else "-inf"


def _bound_from_json(value: Any, shape: list[int], dtype: str) -> np.ndarray:
    def one(v: Any) -> float:
        if v in ("inf", "-inf"):
            return float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"a saved Box bound must be a number or 'inf'/'-inf', got {v!r}")
        try:
            number = float(v)
        except OverflowError:  # an int beyond float range (JSON ints have no size limit)
            raise ValueError(f"a saved Box bound must be a number or 'inf'/'-inf', got an int of "
                             f"{v.bit_length()} bits") from None
        if math.isnan(number):
            raise ValueError("a saved Box bound must be a number or 'inf'/'-inf', got NaN")
        return number

    if isinstance(value, list):
        values = np.array([one(v) for v in value], dtype=np.float64)
        if values.size != int(np.prod(shape)):
            raise ValueError(f"a saved Box bound has {values.size} values for shape {shape}")
        array = values.reshape(shape)
    else:
        array = np.full(shape, one(value), dtype=np.float64)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return array.astype(dtype)
    return array.astype(dtype)
