"""Seeding: one function seeds Python, NumPy, TensorFlow and Keras for the agents and the generative
models alike (as CleanRL scripts do), and per-component seeds are derived from one run seed."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int | None, *, deterministic_ops: bool = False) -> np.random.Generator:
    """Seed Python, NumPy and TensorFlow; return a NumPy generator for the caller's own draws.

    ``deterministic_ops`` turns on TF op determinism (bitwise-repeatable kernels, somewhat slower),
    which same-seed runs need to give identical weights.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        os.environ.setdefault("PYTHONHASHSEED", str(seed))
        import keras
        import tensorflow as tf

        tf.random.set_seed(seed)
        # Keras 3 initializers without an explicit seed draw from Keras's own global seed
        # generator, which tf.random.set_seed does not reset.
        keras.utils.set_random_seed(seed)
        if deterministic_ops:
            tf.config.experimental.enable_op_determinism()
    return np.random.default_rng(seed)


def derive_seed(seed: int | None, *offsets: int) -> int | None:
    """A distinct, reproducible seed for a sub-component (env i, eval env, ...)."""
    if seed is None:
        return None
    sequence = np.random.SeedSequence([int(seed), *map(int, offsets)])
    return int(sequence.generate_state(1, dtype=np.uint32)[0])
