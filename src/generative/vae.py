"""Variational autoencoders: MLP and CNN, conditional (CVAE) and beta-VAE in one model.

* VAE (Kingma & Welling 2014): the encoder gives ``mean`` and ``log_var`` of q(z|x), the
  reparameterization trick ``z = mean + exp(0.5 * log_var) * eps`` keeps sampling
  differentiable, the loss is the reconstruction error summed over pixels (MSE or binary
  cross-entropy, i.e. the per-pixel mean scaled by the input size) plus the KL term against
  N(0, I) in closed form (:func:`kl_divergence`, appendix B of the paper).
* ``architecture="mlp"``: one 512-unit hidden layer; ``"cnn"``: stride-2 convolutions (32, 64
  filters) and a small dense bottleneck, mirrored by transposed convolutions in the decoder.
* Conditional VAE (Sohn et al. 2015): ``num_classes > 0``; the one-hot label goes into the
  encoder as an extra image channel (through a dense layer) and is concatenated with z in the
  decoder.
* beta-VAE (Higgins et al. 2017): ``beta > 1`` weights the KL term for more disentangled latents.

Example:
    >>> model = VAE(VAEConfig(image_shape=(3, 16, 16), architecture="mlp", hidden_units=8))
    >>> model.compile()
    >>> tuple(model.reconstruct(np.zeros((2, 3, 16, 16), np.float32)).shape)
    (2, 3, 16, 16)
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agents_zoo.core.config import (Config, check_choice, check_int, check_int_tuple, check_number, check_positive,
                                    field)
from generative import common

ARCHITECTURES = ("mlp", "cnn")
RECONSTRUCTION_LOSSES = ("mse", "bce")


@dataclasses.dataclass
class VAEConfig(Config):
    """Hyperparameters of :class:`VAE`; saved with the weights and fed by the CLI."""

    image_shape: tuple[int, int, int] = field((3, 64, 64), doc="channel-first input shape (C, H, W); images are "
                                                               "floats in [0, 1]")
    architecture: str = field("cnn", doc="'mlp' (one dense hidden layer) or 'cnn' (stride-2 convolutions)")
    latent_dim: int = field(2, doc="size of z; 2 allows a latent scatter plot without projection")
    hidden_units: int = field(512, doc="width of the MLP hidden layer")
    filters: tuple[int, ...] = field((32, 64), doc="filters of the CNN's stride-2 convolutions (decoder mirrors them)")
    dense_units: int = field(16, doc="width of the CNN's dense bottleneck before mean / log-variance")
    num_classes: int = field(0, doc="> 0 makes a conditional VAE taking one-hot (or integer) labels of this many "
                                    "classes")
    beta: float = field(1.0, doc="weight of the KL term; > 1 is a beta-VAE")
    reconstruction_loss: str = field("mse", doc="'mse' or 'bce', summed over pixels")
    learning_rate: float = field(1e-3, doc="Adam learning rate used by compile() when no optimizer is given")

    def validate(self) -> None:
        check_int_tuple(self, "image_shape", length=3, layout="(C, H, W)")
        check_choice(self, "architecture", ARCHITECTURES)
        for name in ("latent_dim", "hidden_units", "dense_units"):
            check_int(self, name, minimum=1)
        check_int_tuple(self, "filters", non_empty=True)
        check_int(self, "num_classes", minimum=0)
        check_number(self, "beta", minimum=0.0)
        check_choice(self, "reconstruction_loss", RECONSTRUCTION_LOSSES)
        check_positive(self, "learning_rate")
        if self.architecture == "cnn":
            factor = 2 ** len(self.filters)
            if self.image_shape[1] % factor or self.image_shape[2] % factor:
                raise ValueError(
                    f"a CNN VAE with {len(self.filters)} stride-2 layers needs H and W divisible by {factor}, "
                    f"got image_shape {self.image_shape}"
                )

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


def kl_divergence(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over latent dims (closed form)."""
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def reparameterize(mean: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """z = mean + sigma * eps with eps ~ N(0, I): the noise is an input, so gradients reach mean and sigma."""
    return mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))


def reconstruction_error(images_nhwc: tf.Tensor, logits_nhwc: tf.Tensor, kind: str) -> tf.Tensor:
    """Per-example reconstruction loss summed over pixels (= per-pixel mean times input size)."""
    if kind == "bce":
        per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images_nhwc, logits=logits_nhwc)
    else:
        per_pixel = tf.square(images_nhwc - tf.sigmoid(logits_nhwc))
    return tf.reduce_sum(per_pixel, axis=(1, 2, 3))


def _build_encoder(config: VAEConfig) -> keras.Model:
    channels, height, width = config.image_shape
    image = keras.Input((height, width, channels), name="image")
    inputs = [image]
    if config.architecture == "mlp":
        hidden = layers.Flatten(name="flatten")(image)
        if config.conditional:
            label = keras.Input((config.num_classes,), name="label")
            inputs.append(label)
            hidden = layers.Concatenate(name="concat_label")([hidden, label])
        hidden = layers.Dense(config.hidden_units, activation="relu", name="hidden")(hidden)
    else:
        hidden = image
        if config.conditional:
            # The label becomes one more image channel, learned through a dense layer.
            label = keras.Input((config.num_classes,), name="label")
            inputs.append(label)
            label_plane = layers.Dense(height * width, name="label_to_plane")(label)
            label_plane = layers.Reshape((height, width, 1), name="label_plane")(label_plane)
            hidden = layers.Concatenate(name="concat_label")([hidden, label_plane])
        for index, num_filters in enumerate(config.filters):
            hidden = layers.Conv2D(num_filters, 3, strides=2, padding="same", activation="relu",
                                   name=f"conv_{index}")(hidden)
        hidden = layers.Flatten(name="flatten")(hidden)
        hidden = layers.Dense(config.dense_units, activation="relu", name="bottleneck")(hidden)
    mean = layers.Dense(config.latent_dim, name="z_mean")(hidden)
    log_var = layers.Dense(config.latent_dim, name="z_log_var")(hidden)
    return keras.Model(inputs, [mean, log_var], name="encoder")


def _build_decoder(config: VAEConfig) -> keras.Model:
    channels, height, width = config.image_shape
    latent = keras.Input((config.latent_dim,), name="z")
    inputs = [latent]
    hidden = latent
    if config.conditional:
        label = keras.Input((config.num_classes,), name="label")
        inputs.append(label)
        hidden = layers.Concatenate(name="concat_label")([latent, label])
    if config.architecture == "mlp":
        hidden = layers.Dense(config.hidden_units, activation="relu", name="hidden")(hidden)
        logits = layers.Dense(height * width * channels, name="pixels")(hidden)
        logits = layers.Reshape((height, width, channels), name="image_logits")(logits)
    else:
        factor = 2 ** len(config.filters)
        small_h, small_w = height // factor, width // factor
        hidden = layers.Dense(small_h * small_w * config.filters[-1], activation="relu", name="expand")(hidden)
        hidden = layers.Reshape((small_h, small_w, config.filters[-1]), name="unflatten")(hidden)
        for index, num_filters in enumerate(reversed(config.filters)):
            hidden = layers.Conv2DTranspose(num_filters, 3, strides=2, padding="same", activation="relu",
                                            name=f"deconv_{index}")(hidden)
        logits = layers.Conv2DTranspose(channels, 3, padding="same", name="image_logits")(hidden)
    return keras.Model(inputs, logits, name="decoder")


class VAE(common.ArchivedModel, keras.Model):
    """VAE / CVAE / beta-VAE on channel-first images in [0, 1]; train with ``compile()`` + ``fit()``.

    ``fit`` takes batches of ``images`` or ``(images, labels)``; labels (one-hot or integer) are
    required when ``config.num_classes > 0`` and ignored otherwise.
    """

    model_name = "vae"
    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None, **kwargs):
        super().__init__(config, loss_names=("loss", "reconstruction_loss", "kl_loss"), **kwargs)
        self.encoder = _build_encoder(self.config)
        self.decoder = _build_decoder(self.config)
        self.built = True  # the functional parts own all weights already

    # ------------------------------------------------------------------ plumbing
    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or keras.optimizers.Adam(self.config.learning_rate), **kwargs)

    def _prepare(self, images, labels):
        images = tf.convert_to_tensor(images, tf.float32)
        common.check_image_shape(images.shape, self.config.image_shape, "VAE input images")
        inputs = [common.to_channels_last(images)]
        if self.config.conditional:
            inputs.append(self._one_hot(labels))
        return inputs

    def _one_hot(self, labels):
        if labels is None:
            raise ValueError(f"this conditional VAE needs labels ({self.config.num_classes} classes), got None")
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank == 1:
            return tf.one_hot(tf.cast(labels, tf.int32), self.config.num_classes)
        if labels.shape.rank != 2 or labels.shape[-1] != self.config.num_classes:
            raise ValueError(
                f"labels must be integers (N,) or one-hot (N, {self.config.num_classes}), got shape {tuple(labels.shape)}"
            )
        return tf.cast(labels, tf.float32)

    def _decoder_inputs(self, latent, labels):
        latent = tf.convert_to_tensor(latent, tf.float32)
        return [latent, self._one_hot(labels)] if self.config.conditional else [latent]

    # ------------------------------------------------------------------ public API
    def encode(self, images, labels=None):
        """Return ``(mean, log_var)`` of q(z | images[, labels]); images (N, C, H, W) in [0, 1]."""
        return self.encoder(self._prepare(images, labels), training=False)

    def decode(self, latent, labels=None):
        """Decode latents ``(N, latent_dim)`` to channel-first images in [0, 1]."""
        logits = self.decoder(self._decoder_inputs(latent, labels), training=False)
        return common.to_channels_first(tf.sigmoid(logits))

    def reconstruct(self, images, labels=None):
        """Decode the posterior mean: the deterministic reconstruction used for error metrics."""
        mean, _ = self.encode(images, labels)
        return self.decode(mean, labels)

    def sample(self, num_samples: int, labels=None, seed: int = 0):
        """Decode ``num_samples`` draws from the prior N(0, I)."""
        latent = np.random.default_rng(seed).standard_normal((num_samples, self.config.latent_dim)).astype(np.float32)
        return self.decode(latent, labels)

    def preview_images(self, num_images: int = 16):
        """Prior samples for the TensorBoard grid (classes in turn for a CVAE)."""
        labels = np.arange(num_images) % self.config.num_classes if self.config.conditional else None
        return np.asarray(self.sample(num_images, labels))

    def call(self, inputs, training=False):
        images, labels = common.unpack_images(inputs)
        mean, log_var = self.encoder(self._prepare(images, labels), training=training)
        return self.decode(mean, labels)

    # ------------------------------------------------------------------ training
    def compute_losses(self, images, labels=None, training=False):
        """Per-batch means of (total, reconstruction, KL) with one reparameterized sample."""
        encoder_inputs = self._prepare(images, labels)
        mean, log_var = self.encoder(encoder_inputs, training=training)
        latent = reparameterize(mean, log_var)
        logits = self.decoder(self._decoder_inputs(latent, labels), training=training)
        reconstruction = tf.reduce_mean(reconstruction_error(encoder_inputs[0], logits, self.config.reconstruction_loss))
        kl = tf.reduce_mean(kl_divergence(mean, log_var))
        return reconstruction + self.config.beta * kl, reconstruction, kl

    def train_step(self, data):
        images, labels = common.unpack_images(data)
        with tf.GradientTape() as tape:
            total, reconstruction, kl = self.compute_losses(images, labels, training=True)
        gradients = tape.gradient(total, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._update_metrics(total, reconstruction, kl)

    def test_step(self, data):
        images, labels = common.unpack_images(data)
        return self._update_metrics(*self.compute_losses(images, labels))

    def _update_metrics(self, total, reconstruction, kl):
        return self.report_losses({"loss": total, "reconstruction_loss": reconstruction, "kl_loss": kl})
