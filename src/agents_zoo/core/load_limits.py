"""A file may not make the loader build networks larger than the weights it holds.

A model is rebuilt from its saved config (hidden sizes, spaces, image shapes) and only then are
its saved weights assigned. Without a check, a few bytes of config (``policy_hidden_sizes=[8192,
8192]``, a ``Discrete(50_000_000)`` action space) make Keras allocate and initialize gigabytes
before the weight count is compared. Every weight of every network we build is saved in the
file, so the parameters a config declares can never exceed the array elements the file holds.

:func:`parameter_budget` enforces that while a model is built from a file: each Keras layer
weight is counted when the layer asks for it (``Layer.add_weight``, the one place every Keras
layer creates its weights), before its initializer allocates anything, and the first weight that
would take the total past the number of array elements in the file is refused with an
``ArchiveError`` naming the file, the weight, its shape and both counts. So building from a
file allocates at most as many parameters as the file itself holds.

Outside a budget (every network built for training) the counting wrapper is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from typing import Any, Iterator

from agents_zoo.core.serialization import ArchiveError


class _Budget:
    def __init__(self, available: int, source: str):
        self.available = int(available)
        self.source = source
        self.used = 0

    def spend(self, shape: Any, layer: Any, name: Any) -> None:
        try:
            dims = tuple(int(d) for d in (shape if isinstance(shape, (tuple, list)) else tuple(shape or ())))
        except (TypeError, ValueError):
            return  # Keras itself rejects shapes that are not fully defined
        count = math.prod(dims)
        if self.used + count > self.available:
            where = f"{getattr(layer, 'name', type(layer).__name__)}/{name or 'weight'}"
            raise ArchiveError(
                f"{self.source!r}: its config declares networks with more parameters than the file holds: "
                f"weight {where} of shape {dims} brings the count to {self.used + count}, but the file holds "
                f"{self.available} array elements in all; expected every weight to be in the file "
                "(refused before allocating it)"
            )
        self.used += count


_ACTIVE: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("agents_zoo_parameter_budget", default=None)
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False


def _install() -> None:
    """Wrap ``keras.layers.Layer.add_weight`` once, so weights are counted before allocation."""
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        import keras

        original = keras.layers.Layer.add_weight

        def add_weight(self: Any, *args: Any, **kwargs: Any) -> Any:
            budget = _ACTIVE.get()
            if budget is not None:
                # Keras 3 takes shape as a keyword; the legacy positional form puts it first.
                shape = kwargs.get("shape", args[0] if args else None)
                budget.spend(() if shape is None else shape, self, kwargs.get("name"))
            return original(self, *args, **kwargs)

        add_weight.__wrapped__ = original  # type: ignore[attr-defined]
        add_weight.__doc__ = original.__doc__
        keras.layers.Layer.add_weight = add_weight
        _INSTALLED = True


@contextlib.contextmanager
def parameter_budget(available_elements: int, source: str) -> Iterator[None]:
    """Build networks inside this block with at most ``available_elements`` parameters in all.

    ``available_elements`` is the number of array elements the file ``source`` holds.
    """
    _install()
    token = _ACTIVE.set(_Budget(available_elements, str(source)))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def array_elements(arrays: Any) -> int:
    """The number of elements in a dict (or iterable) of arrays: what a file holds."""
    values = arrays.values() if hasattr(arrays, "values") else arrays
    return sum(int(getattr(value, "size", 0)) for value in values)
