"""DB-VAE: a debiasing variational autoencoder (Amini et al., "Uncovering and Mitigating
Algorithmic Bias through Learned Latent Structure", AIES 2019).

A binary classifier whose encoder also outputs VAE latents. The VAE loss (L1 reconstruction +
``kl_weight`` * KL) applies to positive examples only, so the latent space describes the
variation *within* the positive class. Before each epoch the positives' latent means are
histogrammed per dimension, and each positive is drawn with probability inversely proportional
to the (smoothed) density of its code (:func:`latent_sampling_probabilities`): rare subgroups
are seen more often, without anyone labelling them.

:func:`make_rare_subgroup_task` builds the frame-classification task used by tests and the
benchmark: "is this frame from game P?", where a transformed (color-inverted or hue-shifted)
version of the frames is rare among positives (and optionally common among negatives), so an
unweighted classifier barely learns it and fails on the rare transformed positives.

Example:
    >>> model = DebiasingVAE(DebiasingVAEConfig(image_shape=(3, 16, 16), filters=(4, 8), latent_dim=2))
    >>> model.compile()
    >>> tuple(model.predict_proba(np.zeros((2, 3, 16, 16), np.float32)).shape)
    (2,)
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agents_zoo.core.config import Config, check_int, check_int_tuple, check_number, check_positive, field
from generative import common
from generative.vae import kl_divergence, reparameterize


@dataclasses.dataclass
class DebiasingVAEConfig(Config):
    """Hyperparameters of :class:`DebiasingVAE` and of its adaptive resampling."""

    image_shape: tuple[int, int, int] = field((3, 64, 64), doc="channel-first input shape (C, H, W), floats in [0, 1]")
    filters: tuple[int, ...] = field((16, 32, 64), doc="filters of the encoder's stride-2 convolutions (decoder "
                                                       "mirrors them)")
    dense_units: int = field(64, doc="width of the dense layer before the class logit and latents")
    latent_dim: int = field(8, doc="size of the VAE latent that drives resampling")
    kl_weight: float = field(0.0005, doc="c, the weight of the KL term in the VAE loss (MIT 6.S191 lab value)")
    learning_rate: float = field(5e-4, doc="Adam learning rate used by compile() when no optimizer is given")
    num_bins: int = field(10, doc="histogram bins per latent dimension for the density estimate")
    smoothing: float = field(0.001, doc="added to each bin's density so empty bins do not get infinite weight")

    def validate(self) -> None:
        check_int_tuple(self, "image_shape", length=3, layout="(C, H, W)")
        check_int_tuple(self, "filters", non_empty=True)
        factor = 2 ** len(self.filters)
        if self.image_shape[1] % factor or self.image_shape[2] % factor:
            raise ValueError(f"image_shape (C, H, W) needs H and W divisible by {factor} ({len(self.filters)} "
                             f"stride-2 layers), got {self.image_shape}")
        for name in ("dense_units", "latent_dim", "num_bins"):
            check_int(self, name, minimum=1)
        check_number(self, "kl_weight", minimum=0.0)
        check_positive(self, "learning_rate")
        check_positive(self, "smoothing")


def latent_sampling_probabilities(latent_means: np.ndarray, num_bins: int = 10, smoothing: float = 0.001) -> np.ndarray:
    """Sampling probability of each example, inversely proportional to its latent density.

    Per latent dimension: a normalized histogram, smoothed, gives a density for each example;
    its inverse, normalized, is a probability; an example keeps the largest probability over
    dimensions, so being rare along any one dimension is enough to be up-weighted.
    """
    latent_means = np.asarray(latent_means, np.float64)
    if latent_means.ndim != 2 or len(latent_means) == 0:
        raise ValueError(f"latent_means must be (N, latent_dim) with N > 0, got shape {latent_means.shape}")
    probabilities = np.zeros(len(latent_means))
    for dimension in latent_means.T:
        density, edges = np.histogram(dimension, bins=num_bins, density=True)
        edges[0], edges[-1] = -np.inf, np.inf  # every example falls in some bin
        bin_index = np.clip(np.digitize(dimension, edges) - 1, 0, num_bins - 1)
        smoothed = density + smoothing
        smoothed /= smoothed.sum()
        inverse = 1.0 / smoothed[bin_index]
        probabilities = np.maximum(probabilities, inverse / inverse.sum())
    return probabilities / probabilities.sum()


class DebiasingVAE(common.ArchivedModel, keras.Model):
    """Classifier + VAE branch; ``fit`` takes ``(images, labels)`` with labels 0/1 (1 = positive)."""

    model_name = "dbvae"
    config_class = DebiasingVAEConfig

    def __init__(self, config: DebiasingVAEConfig | None = None, **kwargs):
        super().__init__(config, loss_names=("loss", "classification_loss", "vae_loss", "accuracy"), **kwargs)
        config = self.config
        channels, height, width = config.image_shape
        images = keras.Input((height, width, channels), name="image")
        hidden = images
        for index, num_filters in enumerate(config.filters):
            hidden = layers.Conv2D(num_filters, 3, strides=2, padding="same", activation="relu", name=f"conv_{index}")(hidden)
        hidden = layers.Dense(config.dense_units, activation="relu", name="dense")(layers.Flatten(name="flatten")(hidden))
        outputs = [layers.Dense(1, name="class_logit")(hidden), layers.Dense(config.latent_dim, name="z_mean")(hidden),
                   layers.Dense(config.latent_dim, name="z_log_var")(hidden)]
        self.encoder = keras.Model(images, outputs, name="encoder")

        factor = 2 ** len(config.filters)
        latent = keras.Input((config.latent_dim,), name="z")
        hidden = layers.Dense((height // factor) * (width // factor) * config.filters[-1], activation="relu",
                              name="expand")(latent)
        hidden = layers.Reshape((height // factor, width // factor, config.filters[-1]), name="unflatten")(hidden)
        for index, num_filters in enumerate(reversed(config.filters)):
            hidden = layers.Conv2DTranspose(num_filters, 3, strides=2, padding="same", activation="relu",
                                            name=f"deconv_{index}")(hidden)
        reconstruction = layers.Conv2DTranspose(channels, 3, padding="same", activation="sigmoid", name="image")(hidden)
        self.decoder = keras.Model(latent, reconstruction, name="decoder")
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or keras.optimizers.Adam(self.config.learning_rate), **kwargs)

    def _prepare(self, images):
        images = tf.convert_to_tensor(images, tf.float32)
        common.check_image_shape(images.shape, self.config.image_shape, "DB-VAE input images")
        return common.to_channels_last(images)

    # ------------------------------------------------------------------ public API
    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        """Probability of the positive class for each channel-first image in [0, 1]."""
        logits = [self.encoder(self._prepare(images[start : start + batch_size]), training=False)[0]
                  for start in range(0, len(images), batch_size)]
        return tf.sigmoid(tf.concat(logits, axis=0)[:, 0]).numpy()

    def encode(self, images, batch_size: int = 256) -> np.ndarray:
        """Latent means (N, latent_dim) of the VAE branch."""
        means = [self.encoder(self._prepare(images[start : start + batch_size]), training=False)[1]
                 for start in range(0, len(images), batch_size)]
        return tf.concat(means, axis=0).numpy()

    def sampling_probabilities(self, images) -> np.ndarray:
        """Resampling probabilities of ``images`` (the positives) from their current latents."""
        return latent_sampling_probabilities(self.encode(images), self.config.num_bins, self.config.smoothing)

    def call(self, images, training=False):
        return self.encoder(self._prepare(images), training=training)[0]

    # ------------------------------------------------------------------ training
    def compute_losses(self, images, labels, training=False):
        images = self._prepare(images)
        labels = tf.reshape(tf.cast(labels, tf.float32), (-1, 1))
        logits, mean, log_var = self.encoder(images, training=training)
        classification = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)[:, 0]
        reconstruction = self.decoder(reparameterize(mean, log_var), training=training)
        # L1 reconstruction (mean over pixels) + c * KL, counted for positives only (Amini et al. eq. 4).
        vae = (tf.reduce_mean(tf.abs(images - reconstruction), axis=(1, 2, 3))
               + self.config.kl_weight * kl_divergence(mean, log_var))
        vae = vae * labels[:, 0]
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(logits[:, 0] > 0, tf.float32), labels[:, 0]), tf.float32))
        return {"loss": tf.reduce_mean(classification + vae), "classification_loss": tf.reduce_mean(classification),
                "vae_loss": tf.reduce_mean(vae), "accuracy": accuracy}

    def train_step(self, data):
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise ValueError("DebiasingVAE.fit needs batches of (images, labels) with labels 0/1")
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data[0], data[1], training=True)
        self.optimizer.apply_gradients(zip(tape.gradient(losses["loss"], self.trainable_variables),
                                           self.trainable_variables))
        return self.report_losses(losses)

    def test_step(self, data):
        return self.report_losses(self.compute_losses(data[0], data[1]))


class DebiasingBatches(keras.utils.PyDataset):
    """Batches for ``DebiasingVAE.fit`` that re-weight positives by latent rarity every epoch.

    Each epoch draws ``len(images)`` examples with replacement, keeping the class balance of the
    data; positives are drawn with :meth:`DebiasingVAE.sampling_probabilities` when ``debias``,
    uniformly otherwise (the unweighted baseline: same model, same loss, same number of steps).
    """

    def __init__(self, model: DebiasingVAE, images: np.ndarray, labels: np.ndarray, batch_size: int = 32,
                 debias: bool = True, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        labels = np.asarray(labels).reshape(-1)
        if len(images) != len(labels) or not np.isin(labels, (0, 1)).all():
            raise ValueError(f"need one 0/1 label per image, got {len(images)} images and labels {np.unique(labels)}")
        if len(images) < batch_size:
            raise ValueError(f"need at least batch_size={batch_size} images, got {len(images)}")
        self.model, self.images, self.labels = model, np.asarray(images, np.float32), labels.astype(np.float32)
        self.batch_size, self.debias = int(batch_size), bool(debias)
        self.positive_index = np.flatnonzero(labels == 1)
        self.negative_index = np.flatnonzero(labels == 0)
        self.rng = np.random.default_rng(seed)
        self.positive_probabilities = np.full(len(self.positive_index), 1.0 / max(1, len(self.positive_index)))
        self.resample()

    def resample(self) -> None:
        """Recompute the positives' probabilities from the model's current latents and redraw the epoch."""
        if self.debias and len(self.positive_index):
            self.positive_probabilities = self.model.sampling_probabilities(self.images[self.positive_index])
        positives = self.rng.choice(self.positive_index, size=len(self.positive_index), p=self.positive_probabilities)
        order = np.concatenate([positives, self.negative_index])
        self.epoch_index = order[self.rng.permutation(len(order))]

    def __len__(self) -> int:
        return len(self.epoch_index) // self.batch_size

    def __getitem__(self, batch):
        index = self.epoch_index[batch * self.batch_size : (batch + 1) * self.batch_size]
        return self.images[index], self.labels[index]

    def on_epoch_end(self) -> None:
        self.resample()


RARE_TRANSFORMS = ("invert", "channel_shift", "invert_channel_shift")


def transform_frames(images: np.ndarray, transform: str) -> np.ndarray:
    """Apply a rare-subgroup transform to channel-first images in [0, 1] (returns a copy).

    ``"invert"``: ``1 - x``. ``"channel_shift"``: the color channels rotated (RGB -> GBR), a hue
    shift that keeps the layout and brightness. ``"invert_channel_shift"``: both.
    """
    if transform not in RARE_TRANSFORMS:
        raise ValueError(f"transform must be one of {RARE_TRANSFORMS}, got {transform!r}")
    images = np.asarray(images, np.float32)
    if "channel_shift" in transform:
        images = np.roll(images, -1, axis=1)
    if "invert" in transform:
        images = 1.0 - images
    return np.array(images, np.float32, copy=True)


def make_rare_subgroup_task(frames: np.ndarray, game_labels: np.ndarray, positive_game: int = 0,
                            rare_fraction: float = 0.02, negative_transformed_fraction: float = 0.5, seed: int = 0,
                            transform: str = "invert"):
    """Binary "is it game ``positive_game``?" data with a rare subgroup of positives.

    The subgroup is transformed frames (:func:`transform_frames`, color-inverted by default):
    ``rare_fraction`` of the positives and ``negative_transformed_fraction`` of the negatives are
    transformed, so the transform is a spurious cue for "negative" (and, at a fraction of 0, a
    part of the positive class that the classifier barely sees). Returns ``(images, labels,
    is_rare)``, float32 channel-first in [0, 1].
    """
    if not 0.0 <= rare_fraction <= 1.0 or not 0.0 <= negative_transformed_fraction <= 1.0:
        raise ValueError(f"fractions must be in [0, 1], got {rare_fraction} and {negative_transformed_fraction}")
    rng = np.random.default_rng(seed)
    images = np.asarray(frames, np.float32).copy()
    labels = (np.asarray(game_labels) == positive_game).astype(np.int64)
    transformed = np.where(labels == 1, rng.random(len(labels)) < rare_fraction,
                           rng.random(len(labels)) < negative_transformed_fraction)
    images[transformed] = transform_frames(images[transformed], transform)
    return images, labels, transformed & (labels == 1)
