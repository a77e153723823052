"""Action distributions, in TensorFlow (for losses) and NumPy (for cheap acting).

Acting runs in NumPy on the CPU because one TF call costs 140-320 us here against ~4 us for a
NumPy MLP; the TF versions are used inside compiled updates. Both follow the same formulas,
and the tests check both against closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- categorical
def categorical_log_prob(logits: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    log_probs = tf.nn.log_softmax(logits)
    return tf.gather(log_probs, tf.cast(actions, tf.int32), axis=-1, batch_dims=1)


def categorical_entropy(logits: tf.Tensor) -> tf.Tensor:
    log_probs = tf.nn.log_softmax(logits)
    return -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)


def np_log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_categorical_sample(logits: np.ndarray, rng: np.random.Generator, deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Actions and their log-probabilities for a batch of logits (inverse-CDF sampling)."""
    log_probs = np_log_softmax(logits)
    if deterministic:
        actions = log_probs.argmax(axis=-1)
    else:
        cdf = np.cumsum(np.exp(log_probs), axis=-1)
        draws = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
        actions = np.minimum((cdf < draws).sum(axis=-1), logits.shape[-1] - 1)
    return actions, np.take_along_axis(log_probs, actions[:, None], axis=-1)[:, 0]


# ----------------------------------------------------------------------------- diagonal Gaussian
def gaussian_log_prob(mean: tf.Tensor, log_std: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
    z = (actions - mean) * tf.exp(-log_std)
    return tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * LOG_2PI, axis=-1)


def gaussian_entropy(log_std: tf.Tensor, batch_size: tf.Tensor | int | None = None) -> tf.Tensor:
    entropy = tf.reduce_sum(log_std + 0.5 * (LOG_2PI + 1.0), axis=-1)
    if batch_size is not None and entropy.shape.rank == 0:
        entropy = tf.fill([batch_size], entropy)
    return entropy


def np_gaussian_sample(mean: np.ndarray, log_std: np.ndarray, rng: np.random.Generator, deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
    if deterministic:
        actions = mean.copy()
    else:
        actions = mean + np.exp(log_std) * rng.standard_normal(mean.shape).astype(mean.dtype)
    z = (actions - mean) * np.exp(-log_std)
    log_probs = np.sum(-0.5 * z * z - log_std - 0.5 * LOG_2PI, axis=-1)
    return actions, log_probs
