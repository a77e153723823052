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
_FLOAT32_EPS = float(np.finfo(np.float32).eps)


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


# ----------------------------------------------------------------------------- gSDE
class StateDependentNoise:
    """Generalized state-dependent exploration (gSDE; Raffin, Kober & Stulp 2021, "Smooth
    Exploration for Robotic Reinforcement Learning"), as SB3's ``StateDependentNoiseDistribution``
    with ``learn_features=False``.

    The noise of an action is ``latent @ E``: ``latent`` is the policy network's last hidden
    layer (gradients stopped) and ``E``, an exploration matrix of shape (latent_dim, action_dim),
    is drawn from N(0, std) and held for several steps (one matrix per env), so the exploration
    is a smooth function of the state. ``log_std`` is a trained parameter of shape
    (latent_dim, action_dim) (``full_std``) or (latent_dim, 1); std is ``exp(log_std)``, or
    ``expln`` (exp below 0, log1p(x) + 1 above) with ``use_expln``. Given the latent, the action
    is Gaussian: N(mean, sqrt(latent^2 @ std^2 + epsilon)) per action dimension. With
    ``squash_output`` actions are ``tanh`` of that Gaussian (log-prob with the tanh log-det
    correction); the entropy then has no closed form, and, as SB3's PPO and A2C estimate it by
    ``-log_prob``, ``log_prob_and_entropy`` returns ``-log_prob`` as the entropy.
    """

    def __init__(self, action_dim: int, full_std: bool = True, use_expln: bool = False, squash_output: bool = False,
                 epsilon: float = 1e-6):
        self.action_dim, self.full_std, self.use_expln = action_dim, full_std, use_expln
        self.squash_output, self.epsilon = squash_output, epsilon

    def log_std_shape(self, latent_dim: int) -> tuple[int, int]:
        return latent_dim, self.action_dim if self.full_std else 1

    # ------------------------------------------------------------------ TensorFlow (losses)
    def std(self, log_std: tf.Tensor) -> tf.Tensor:
        """The (latent_dim, action_dim) std of the exploration matrices."""
        if self.use_expln:
            # exp of min(x, 0) and log1p of max(x, 0): the branch not taken stays finite, so its
            # (masked) gradient is 0, never inf * 0.
            std = tf.where(log_std <= 0, tf.exp(tf.minimum(log_std, 0.0)),
                           tf.math.log1p(tf.maximum(log_std, 0.0) + self.epsilon) + 1.0)
        else:
            std = tf.exp(log_std)
        return std if self.full_std else tf.broadcast_to(std, [tf.shape(log_std)[0], self.action_dim])

    def log_prob_and_entropy(self, mean: tf.Tensor, log_std: tf.Tensor, latent: tf.Tensor,
                             actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-sample log pi(a | s) and entropy (``-log_prob`` when squashed, see the class doc)."""
        latent = tf.stop_gradient(latent)
        sigma = tf.sqrt(tf.matmul(tf.square(latent), tf.square(self.std(log_std))) + self.epsilon)
        gaussian_actions = actions
        if self.squash_output:
            # SB3's TanhBijector.inverse: atanh as 0.5 * (log1p(y) - log1p(-y)) of y clipped by float32 eps.
            y = tf.clip_by_value(actions, -1.0 + _FLOAT32_EPS, 1.0 - _FLOAT32_EPS)
            gaussian_actions = 0.5 * (tf.math.log1p(y) - tf.math.log1p(-y))
        z = (gaussian_actions - mean) / sigma
        log_prob = tf.reduce_sum(-0.5 * tf.square(z) - tf.math.log(sigma) - 0.5 * LOG_2PI, axis=-1)
        if self.squash_output:
            log_prob -= tf.reduce_sum(tf.math.log(1.0 - tf.square(tf.tanh(gaussian_actions)) + self.epsilon), axis=-1)
            return log_prob, -log_prob
        return log_prob, tf.reduce_sum(tf.math.log(sigma) + 0.5 * (LOG_2PI + 1.0), axis=-1)

    # ------------------------------------------------------------------ NumPy (acting)
    def np_std(self, log_std: np.ndarray) -> np.ndarray:
        if self.use_expln:
            std = np.where(log_std <= 0, np.exp(np.minimum(log_std, 0.0)),
                           np.log1p(np.maximum(log_std, 0.0) + self.epsilon) + 1.0).astype(log_std.dtype)
        else:
            std = np.exp(log_std)
        return std if self.full_std else np.broadcast_to(std, (log_std.shape[0], self.action_dim))

    def np_sample_matrices(self, log_std: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` exploration matrices (n, latent_dim, action_dim), each entry drawn from N(0, std)."""
        std = self.np_std(log_std)
        return (std * rng.standard_normal((n, *std.shape))).astype(np.float32)

    def np_sample(self, mean: np.ndarray, latent: np.ndarray, log_std: np.ndarray, matrices: np.ndarray,
                  deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``mean + latent @ E`` (``tanh`` of it when squashed) and their log-probabilities.

        Row i uses ``matrices[i]`` when there is one matrix per row (one per env), else all rows
        use ``matrices[0]`` (SB3 uses its single ``exploration_mat`` there). Deterministic: the mean.
        """
        if deterministic:
            gaussian_actions = mean
        elif len(latent) == len(matrices):
            gaussian_actions = mean + np.einsum("bl,bla->ba", latent, matrices)
        else:
            gaussian_actions = mean + latent @ matrices[0]
        actions = np.tanh(gaussian_actions) if self.squash_output else gaussian_actions
        return actions, self.np_log_prob(mean, log_std, latent, actions)

    def np_log_prob(self, mean: np.ndarray, log_std: np.ndarray, latent: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The NumPy twin of ``log_prob_and_entropy``'s log-probability."""
        sigma = np.sqrt(np.square(latent) @ np.square(self.np_std(log_std)) + self.epsilon)
        gaussian_actions = actions
        if self.squash_output:
            y = np.clip(actions, -1.0 + _FLOAT32_EPS, 1.0 - _FLOAT32_EPS)
            gaussian_actions = 0.5 * (np.log1p(y) - np.log1p(-y))
        z = (gaussian_actions - mean) / sigma
        log_prob = np.sum(-0.5 * z * z - np.log(sigma) - 0.5 * LOG_2PI, axis=-1)
        if self.squash_output:
            log_prob -= np.sum(np.log(1.0 - np.square(np.tanh(gaussian_actions)) + self.epsilon), axis=-1)
        return log_prob
