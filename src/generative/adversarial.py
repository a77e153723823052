"""The adversarial pieces of the generative models: the shared objective, plus DiffAugment.

The losses, :func:`expert_reward` and :func:`build_mlp_discriminator` are defined in
:mod:`agents_zoo.core.adversarial`, below both the agents (GAIL) and the generative models, and
are re-exported here under their usual names (``generative.adversarial.discriminator_loss``).

:func:`diff_augment` is DiffAugment (Zhao et al. 2020): the same random, differentiable
translation and cutout applied to every discriminator input, real and generated, so that a
discriminator trained on a few thousand frames cannot memorize them.

Example:
    >>> import numpy as np
    >>> diff_augment(np.ones((2, 8, 8, 3), np.float32), translation=0.0, cutout=0.0).shape
    TensorShape([2, 8, 8, 3])
"""

from __future__ import annotations

import tensorflow as tf

from agents_zoo.core.adversarial import (
    LOSS_MODES,
    build_mlp_discriminator,
    discriminator_accuracy,
    discriminator_loss,
    expert_reward,
    generator_loss,
)

__all__ = ["LOSS_MODES", "build_mlp_discriminator", "diff_augment", "discriminator_accuracy", "discriminator_loss",
           "expert_reward", "generator_loss"]


def diff_augment(images, translation: float = 0.125, cutout: float = 0.5) -> tf.Tensor:
    """DiffAugment's translation + cutout (Zhao et al. 2020) on NHWC images, per image at random.

    Each image is shifted by up to ``translation`` of its size in each direction (zero fill), then
    a square of ``cutout`` of its size, centred at a random pixel, is set to 0. Differentiable in
    the images, so the generator is trained through the same augmentation as the discriminator.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    if translation > 0:
        pad_rows, pad_cols = int(height * translation + 0.5), int(width * translation + 0.5)
        padded = tf.pad(images, [[0, 0], [pad_rows, pad_rows], [pad_cols, pad_cols], [0, 0]])
        shift_rows = tf.random.uniform([batch, 1], 0, 2 * pad_rows + 1, dtype=tf.int32)
        shift_cols = tf.random.uniform([batch, 1], 0, 2 * pad_cols + 1, dtype=tf.int32)
        padded = tf.gather(padded, tf.range(height)[None] + shift_rows, axis=1, batch_dims=1)
        images = tf.gather(padded, tf.range(width)[None] + shift_cols, axis=2, batch_dims=1)
    if cutout > 0:
        half_rows, half_cols = int(height * cutout + 0.5) // 2, int(width * cutout + 0.5) // 2
        centre_rows = tf.random.uniform([batch, 1, 1], 0, height, dtype=tf.int32)
        centre_cols = tf.random.uniform([batch, 1, 1], 0, width, dtype=tf.int32)
        inside_rows = tf.abs(tf.range(height)[None, :, None] - centre_rows) < half_rows
        inside_cols = tf.abs(tf.range(width)[None, None, :] - centre_cols) < half_cols
        keep = 1.0 - tf.cast(tf.logical_and(inside_rows, inside_cols), tf.float32)
        images = images * keep[..., None]
    return images
