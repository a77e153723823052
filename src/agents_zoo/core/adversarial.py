"""The adversarial objective shared by GAIL and the generative models (GAN, CycleGAN).

A discriminator outputs *logits* (any shape: one per example, or a PatchGAN patch),
:func:`discriminator_loss` trains it to call the first argument real and the second fake,
:func:`generator_loss` trains the other side to make its samples look real. Three objectives are
offered:

* ``"bce"``: binary cross-entropy on logits, with the non-saturating generator loss
  ``-log D(G(z))`` (Goodfellow et al. 2014, section 3), as in DCGAN.
* ``"lsgan"``: least squares (Mao et al. 2017), what the CycleGAN paper uses for stable training.
* ``"hinge"``: the hinge loss of SNGAN / SAGAN (Miyato et al. 2018; Zhang et al. 2019): the
  discriminator pushes real logits above 1 and fake ones below -1, the generator raises its
  samples' logits; paired with spectral normalization.

GAIL (Ho & Ermon 2016) uses it with expert pairs as one side and policy pairs as the other;
:func:`expert_reward` gives the ``-log sigmoid(logit)`` reward of that convention, and
:func:`build_mlp_discriminator` its discriminator on flat state-action features. The image
augmentation of the GAN (DiffAugment) lives with the models, in :mod:`generative.adversarial`.

Example:
    >>> import numpy as np
    >>> disc = build_mlp_discriminator(input_dim=4, hidden_units=(8,))
    >>> logits = disc(np.zeros((3, 4), np.float32))
    >>> tuple(logits.shape)
    (3, 1)
    >>> round(float(discriminator_loss(np.zeros(3), np.zeros(3))), 4)  # log 2 for a coin flip
    0.6931
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf
from keras import layers

LOSS_MODES = ("bce", "lsgan", "hinge")
REWARD_FORMS = ("gail", "log_d", "logit", "mirror")  # GAIL's reward from D's logits: gail_reward


def _check_mode(mode: str) -> None:
    if mode not in LOSS_MODES:
        raise ValueError(f"adversarial loss mode must be one of {LOSS_MODES}, got {mode!r}")


def _bce_with_logits(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(real_logits, fake_logits, mode: str = "bce", real_label: float = 1.0) -> tf.Tensor:
    """Mean loss for calling ``real_logits`` real and ``fake_logits`` fake (halves averaged).

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016), which keeps the
    discriminator from becoming over-confident early on (for ``"hinge"`` it scales the margin).
    """
    _check_mode(mode)
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    if mode == "bce":
        real_loss = _bce_with_logits(tf.fill(tf.shape(real_logits), real_label), real_logits)
        fake_loss = _bce_with_logits(tf.zeros_like(fake_logits), fake_logits)
    elif mode == "hinge":
        real_loss = tf.reduce_mean(tf.nn.relu(real_label - real_logits))
        fake_loss = tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
    else:
        real_loss = tf.reduce_mean(tf.square(real_logits - real_label))
        fake_loss = tf.reduce_mean(tf.square(fake_logits))
    return 0.5 * (real_loss + fake_loss)


def generator_loss(fake_logits, mode: str = "bce") -> tf.Tensor:
    """Loss for the generator: make the discriminator call its samples real."""
    _check_mode(mode)
    fake_logits = tf.cast(fake_logits, tf.float32)
    if mode == "bce":
        return _bce_with_logits(tf.ones_like(fake_logits), fake_logits)
    if mode == "hinge":
        return -tf.reduce_mean(fake_logits)
    return tf.reduce_mean(tf.square(fake_logits - 1.0))


def discriminator_accuracy(real_logits, fake_logits) -> tf.Tensor:
    """Fraction of real logits > 0 and fake logits < 0 (a logit of 0 is probability 1/2)."""
    real_hits = tf.cast(tf.reshape(real_logits, [-1]) > 0, tf.float32)
    fake_hits = tf.cast(tf.reshape(fake_logits, [-1]) < 0, tf.float32)
    return tf.reduce_mean(tf.concat([real_hits, fake_hits], axis=0))


def expert_reward(logits) -> tf.Tensor:
    """GAIL reward ``-log sigmoid(logit)`` for a discriminator trained with expert pairs as *fake*.

    With :func:`discriminator_loss` (``real_logits=policy_logits, fake_logits=expert_logits``)
    expert pairs go toward logit -inf, so pairs that look expert get a large reward.
    ``softplus(-x) == -log sigmoid(x)`` without overflow.
    """
    return tf.nn.softplus(-tf.cast(logits, tf.float32))


def gail_reward(logits: Any, form: str = "gail") -> tf.Tensor:
    """The generator's reward from discriminator logits (see the module docstring)."""
    logits = tf.cast(logits, tf.float32)
    if form == "gail":
        return tf.nn.softplus(logits)  # -log(1 - sigmoid(x)) = softplus(x), without overflow
    if form == "log_d":
        return -tf.nn.softplus(-logits)  # log sigmoid(x)
    if form == "logit":
        return logits  # log D - log(1 - D) = x
    if form == "mirror":
        return expert_reward(logits)  # -log sigmoid(x), expert pairs trained toward 0
    raise ValueError(f"reward_form must be one of {', '.join(REWARD_FORMS)}, got {form!r}")


def bernoulli_entropy(logits: tf.Tensor) -> tf.Tensor:
    """H(sigmoid(x)) = (1 - sigmoid(x)) x - log sigmoid(x) (the GAIL code's logit_bernoulli_entropy)."""
    return (1.0 - tf.sigmoid(logits)) * logits + tf.nn.softplus(-logits)


def discriminator_objective(expert_logits: Any, policy_logits: Any, form: str = "gail",
                            entropy_coef: float = 0.0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(loss, expert accuracy, policy accuracy) of one discriminator batch, gradient penalty aside.

    Binary cross-entropy with expert as "real" (the ``mirror`` form swaps the sides), minus
    ``entropy_coef`` times the mean Bernoulli entropy of all outputs.
    """
    expert_logits = tf.reshape(tf.cast(expert_logits, tf.float32), [-1])
    policy_logits = tf.reshape(tf.cast(policy_logits, tf.float32), [-1])
    if form == "mirror":
        loss = discriminator_loss(policy_logits, expert_logits)
        expert_hits, policy_hits = expert_logits < 0, policy_logits > 0
    else:
        loss = discriminator_loss(expert_logits, policy_logits)
        expert_hits, policy_hits = expert_logits > 0, policy_logits < 0
    if entropy_coef:
        loss -= entropy_coef * tf.reduce_mean(bernoulli_entropy(tf.concat([expert_logits, policy_logits], 0)))
    return (loss, tf.reduce_mean(tf.cast(expert_hits, tf.float32)), tf.reduce_mean(tf.cast(policy_hits, tf.float32)))


def build_mlp_discriminator(
    input_dim: int,
    hidden_units: Sequence[int] = (64, 64),
    batch_norm: bool = False,
    activation: str = "tanh",
    name: str = "mlp_discriminator",
) -> keras.Model:
    """A binary discriminator on flat feature vectors (e.g. GAIL's state-action pairs): one logit."""
    if int(input_dim) < 1:
        raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
    if any(int(units) < 1 for units in hidden_units):
        raise ValueError(f"hidden_units must be positive integers, got {tuple(hidden_units)!r}")
    inputs = keras.Input(shape=(int(input_dim),), name="features")
    hidden = inputs
    for index, units in enumerate(hidden_units):
        hidden = layers.Dense(int(units), name=f"dense_{index}")(hidden)
        if batch_norm:
            hidden = layers.BatchNormalization(name=f"batch_norm_{index}")(hidden)
        hidden = layers.Activation(activation, name=f"{activation}_{index}")(hidden)
    logits = layers.Dense(1, name="logit")(hidden)
    return keras.Model(inputs, logits, name=name)
