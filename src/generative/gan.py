"""A DCGAN-shaped GAN on channel-first Atari frames (the "Atari GAN" of Deep RL Hands-On).

The discriminator is a stack of stride-2 4x4 convolutions down to 4x4 and one 4x4 "valid"
convolution to a single logit (five conv layers for 64x64 input); the generator mirrors it with
transposed convolutions from the latent vector up to a tanh image (Radford et al. 2016). Images
are in [0, 1] outside and scaled to [-1, 1] inside, to match tanh.

Each ``train_step`` is the standard two-phase update:
1. the discriminator on a real batch (label 1) and a generated batch with the generator cut off
   by ``tf.stop_gradient`` (label 0), its own variables only;
2. the generator on a fresh generated batch labelled real, through the discriminator, with the
   generator's gradients only (the discriminator is not updated in this phase).

Weights start from normal(0, 0.02), as in the DCGAN paper. The defaults are what trains on
64x64 frames of four games on a CPU budget (``benchmarks/results/generative.md``): the plain
DCGAN discriminator (batch norm, BCE) wins outright there, and without batch norm the generator
collapses onto one game. So the discriminator is spectrally normalized with the hinge loss
(SNGAN, Miyato et al. 2018), has a minibatch standard-deviation channel against collapse
(ProGAN, Karras et al. 2018), and sees every input through DiffAugment (Zhao et al. 2020), which
keeps it from memorizing a few thousand real frames. ``GANConfig(loss_mode="bce",
discriminator_normalization="batch", minibatch_std=False, augment=False)`` is the plain DCGAN;
the older brakes remain options: a lower ``discriminator_learning_rate``, one-sided label
smoothing (``real_label=0.9``) and decaying instance noise (``instance_noise``).

Example:
    >>> gan = GAN(GANConfig(image_shape=(3, 16, 16), latent_dim=4, generator_filters=4, discriminator_filters=4))
    >>> gan.compile()
    >>> tuple(gan.generate(2).shape)
    (2, 3, 16, 16)
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agents_zoo.core.config import (Config, check_bool, check_choice, check_int, check_int_tuple, check_number,
                                    check_optional, check_positive, field)
from generative import adversarial, common

SMALLEST_FEATURE_MAP = 4
DISCRIMINATOR_NORMALIZATIONS = ("batch", "spectral", "none")


@dataclasses.dataclass
class GANConfig(Config):
    """Hyperparameters of :class:`GAN`; saved with the weights and fed by the CLI."""

    image_shape: tuple[int, int, int] = field((3, 64, 64), doc="channel-first image shape (C, H, W), square, "
                                                               "H = 4 * 2**k")
    latent_dim: int = field(100, doc="size of the generator's input noise vector")
    generator_filters: int = field(64, doc="filters of the generator's last hidden layer; doubled at each coarser "
                                           "resolution")
    discriminator_filters: int = field(64, doc="filters of the discriminator's first layer; doubled at each "
                                               "stride-2 layer")
    learning_rate: float = field(2e-4, doc="Adam learning rate of both networks (DCGAN paper)")
    beta_1: float = field(0.5, doc="Adam beta_1; 0.5 instead of 0.9 damps oscillation (DCGAN paper, section 4)")
    real_label: float = field(1.0, doc="target of real images for the discriminator; 0.9 is one-sided label smoothing")
    loss_mode: str = field("hinge", doc="'hinge' (SNGAN), 'bce' (the classic GAN, DCGAN) or 'lsgan' (least squares)")
    # Spectral normalization divides every discriminator weight by its largest singular value: a
    # Lipschitz bound that keeps D's gradients useful to G.
    discriminator_normalization: str = field("spectral", doc="'spectral' (SNGAN), 'batch' (DCGAN) or 'none'")
    # A batch of near-identical fakes is then easy to spot, which pushes the generator away from
    # collapsing onto one game.
    minibatch_std: bool = field(True, doc="append the batch's mean feature standard deviation as one more channel "
                                          "before the logit layer (Karras et al. 2018)")
    # On a few thousand frames the discriminator otherwise memorizes the real set and wins.
    augment: bool = field(True, doc="DiffAugment (translation + cutout, generative.adversarial.diff_augment) on "
                                    "every discriminator input, real and generated, in both phases")
    discriminator_learning_rate: float | None = field(None, doc="Adam learning rate of the discriminator; None "
                                                                "uses learning_rate (a lower one slows D down)")
    init_std: float = field(0.02, doc="weights drawn from normal(0, init_std), batch-norm scales from "
                                      "normal(1, init_std) (DCGAN paper)")
    # Early on the two distributions overlap, so the discriminator cannot win outright at once.
    instance_noise: float = field(0.0, doc="std (in the [-1, 1] model space) of Gaussian noise added to every "
                                           "discriminator input at step 0, decaying linearly to 0 over "
                                           "instance_noise_steps (Sonderby et al. 2017)")
    instance_noise_steps: int = field(1000, doc="generator updates over which the instance noise decays to 0")

    @classmethod
    def upgrade_saved(cls, values: dict) -> dict:
        """Read archives saved before ``discriminator_normalization`` replaced the boolean
        ``discriminator_batch_norm``; those predate the minibatch-std and DiffAugment options, off then."""
        if "discriminator_batch_norm" in values:
            batch_norm = values.pop("discriminator_batch_norm")
            if not isinstance(batch_norm, bool):
                raise ValueError(f"discriminator_batch_norm must be true or false, got {batch_norm!r}")
            values["discriminator_normalization"] = "batch" if batch_norm else "none"
            values.setdefault("minibatch_std", False)
            values.setdefault("augment", False)
        return values

    def validate(self) -> None:
        check_int_tuple(self, "image_shape", length=3, layout="(C, H, W)")
        if self.image_shape[1] != self.image_shape[2]:
            raise ValueError(f"image_shape must be square (C, H, H), got {self.image_shape}")
        common.num_downsamplings(self.image_shape[1], SMALLEST_FEATURE_MAP, "GAN image height")
        for name in ("latent_dim", "generator_filters", "discriminator_filters", "instance_noise_steps"):
            check_int(self, name, minimum=1)
        check_positive(self, "learning_rate")
        check_optional(self, "discriminator_learning_rate", check_positive)
        check_number(self, "beta_1", minimum=0.0, maximum=1.0, exclusive_max=True)
        check_number(self, "real_label", minimum=0.0, maximum=1.0, exclusive_min=True)
        check_choice(self, "loss_mode", adversarial.LOSS_MODES)
        check_choice(self, "discriminator_normalization", DISCRIMINATOR_NORMALIZATIONS)
        check_bool(self, "minibatch_std")
        check_bool(self, "augment")
        check_positive(self, "init_std")
        check_number(self, "instance_noise", minimum=0.0)


def _dcgan_initializers(config: GANConfig) -> dict:
    return {"kernel_initializer": keras.initializers.RandomNormal(0.0, config.init_std)}


def _batch_norm(config: GANConfig, name: str) -> layers.Layer:
    return layers.BatchNormalization(gamma_initializer=keras.initializers.RandomNormal(1.0, config.init_std), name=name)


class SpectralConv2D(layers.Conv2D):
    """Conv2D whose kernel is divided by its largest singular value at every call (SNGAN).

    As in Miyato et al. 2018 and PyTorch's ``spectral_norm``: the singular vector estimate is a
    non-trainable buffer refined by one power iteration per training call, and gradients flow
    through the division by sigma. The kernel variable itself is never rewritten (keras'
    ``SpectralNormalization`` wrapper overwrites it in place, so a generator step would move the
    discriminator's weights).
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.singular_vector = self.add_weight(name="singular_vector", shape=(1, self.filters), trainable=False,
                                               initializer=keras.initializers.RandomNormal(0.0, 1.0))

    def normalized_kernel(self, training: bool = False) -> tf.Tensor:
        matrix = tf.reshape(self.kernel, (-1, self.filters))
        left = tf.math.l2_normalize(tf.matmul(self.singular_vector, matrix, transpose_b=True))
        right = tf.math.l2_normalize(tf.matmul(left, matrix))
        if training:
            self.singular_vector.assign(right)
        sigma = tf.reduce_sum(tf.matmul(tf.stop_gradient(left), matrix) * tf.stop_gradient(right))
        return self.kernel / sigma

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


class MinibatchStdDev(layers.Layer):
    """Appends one channel holding the batch's mean per-feature standard deviation (ProGAN)."""

    def call(self, features):
        mean_std = tf.reduce_mean(tf.sqrt(tf.math.reduce_variance(features, axis=0) + 1e-8))
        return tf.concat([features, tf.fill(tf.concat([tf.shape(features)[:-1], [1]], 0), mean_std)], axis=-1)


def build_discriminator(config: GANConfig) -> keras.Model:
    """NHWC images in [-1, 1] -> one logit per image."""
    channels, size, _ = config.image_shape
    num_strided = common.num_downsamplings(size, SMALLEST_FEATURE_MAP, "GAN image height")
    batch_norm = config.discriminator_normalization == "batch"

    conv = SpectralConv2D if config.discriminator_normalization == "spectral" else layers.Conv2D

    images = keras.Input((size, size, channels), name="image")
    hidden = images
    for index in range(num_strided):
        hidden = conv(config.discriminator_filters * 2**index, 4, strides=2, padding="same",
                      use_bias=index == 0 or not batch_norm, name=f"conv_{index}", **_dcgan_initializers(config))(hidden)
        if index > 0 and batch_norm:  # none on the input layer (DCGAN paper)
            hidden = _batch_norm(config, f"batch_norm_{index}")(hidden)
        hidden = layers.LeakyReLU(0.2, name=f"leaky_relu_{index}")(hidden)
    if config.minibatch_std:
        hidden = MinibatchStdDev(name="minibatch_std")(hidden)
    logits = conv(1, SMALLEST_FEATURE_MAP, padding="valid", name="conv_logit", **_dcgan_initializers(config))(hidden)
    logits = layers.Reshape((1,), name="logit")(logits)
    return keras.Model(images, logits, name="discriminator")


def build_generator(config: GANConfig) -> keras.Model:
    """Latent vectors -> NHWC images in [-1, 1] (tanh)."""
    channels, size, _ = config.image_shape
    num_strided = common.num_downsamplings(size, SMALLEST_FEATURE_MAP, "GAN image height")
    latent = keras.Input((config.latent_dim,), name="z")
    widest = config.generator_filters * 2 ** (num_strided - 1)
    hidden = layers.Dense(SMALLEST_FEATURE_MAP * SMALLEST_FEATURE_MAP * widest, use_bias=False, name="project",
                          **_dcgan_initializers(config))(latent)
    hidden = layers.Reshape((SMALLEST_FEATURE_MAP, SMALLEST_FEATURE_MAP, widest), name="unflatten")(hidden)
    hidden = _batch_norm(config, "batch_norm_project")(hidden)
    hidden = layers.ReLU(name="relu_project")(hidden)
    for index in range(num_strided - 1):
        num_filters = config.generator_filters * 2 ** (num_strided - 2 - index)
        hidden = layers.Conv2DTranspose(num_filters, 4, strides=2, padding="same", use_bias=False,
                                        name=f"deconv_{index}", **_dcgan_initializers(config))(hidden)
        hidden = _batch_norm(config, f"batch_norm_{index}")(hidden)
        hidden = layers.ReLU(name=f"relu_{index}")(hidden)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                    name="deconv_image", **_dcgan_initializers(config))(hidden)
    return keras.Model(latent, images, name="generator")


class GAN(common.ArchivedModel, keras.Model):
    """DCGAN; ``fit`` takes batches of channel-first images in [0, 1] (labels, if any, are ignored)."""

    model_name = "gan"
    config_class = GANConfig

    def __init__(self, config: GANConfig | None = None, **kwargs):
        super().__init__(config, loss_names=("discriminator_loss", "generator_loss", "discriminator_accuracy"), **kwargs)
        self.generator = build_generator(self.config)
        self.discriminator = build_discriminator(self.config)
        # A fixed latent batch makes successive preview grids comparable.
        self.preview_latent = np.random.default_rng(0).standard_normal((64, self.config.latent_dim)).astype(np.float32)
        self.built = True

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Two optimizers, one per network; defaults are Adam(lr, beta_1) from the config."""
        make_adam = lambda rate: keras.optimizers.Adam(rate, beta_1=self.config.beta_1)  # noqa: E731
        discriminator_rate = self.config.discriminator_learning_rate or self.config.learning_rate
        self.generator_optimizer = generator_optimizer or make_adam(self.config.learning_rate)
        self.discriminator_optimizer = discriminator_optimizer or make_adam(discriminator_rate)
        # Create the slot variables now: variables created inside the traced train step are fragile.
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        super().compile(**kwargs)

    # ------------------------------------------------------------------ public API
    def generate(self, num_images: int | None = None, latent=None, seed: int = 0):
        """Channel-first images in [0, 1] from ``latent`` or ``num_images`` random latents."""
        if latent is None:
            latent = np.random.default_rng(seed).standard_normal((num_images, self.config.latent_dim))
        latent = tf.convert_to_tensor(latent, tf.float32)
        if latent.shape.rank != 2 or latent.shape[-1] != self.config.latent_dim:
            raise ValueError(f"latent must have shape (N, {self.config.latent_dim}), got {tuple(latent.shape)}")
        images = self.generator(latent, training=False)
        return common.to_channels_first((images + 1.0) * 0.5)

    def discriminate(self, images):
        """Discriminator logits for channel-first images in [0, 1]; > 0 means 'looks real'."""
        return self.discriminator(self._to_model_space(images), training=False)

    def preview_images(self, num_images: int = 16):
        return np.asarray(self.generate(latent=self.preview_latent[:num_images]))

    def call(self, latent, training=False):
        return self.generate(latent=latent)

    def _to_model_space(self, images):
        images = tf.convert_to_tensor(images, tf.float32)
        common.check_image_shape(images.shape, self.config.image_shape, "GAN images")
        return common.to_channels_last(images) * 2.0 - 1.0

    # ------------------------------------------------------------------ training
    def instance_noise_std(self) -> tf.Tensor:
        """Current std of the instance noise: ``instance_noise`` decaying linearly to 0."""
        progress = tf.cast(self.generator_optimizer.iterations, tf.float32) / float(self.config.instance_noise_steps)
        return self.config.instance_noise * tf.maximum(0.0, 1.0 - progress)

    def _discriminator_input(self, images, noise_std):
        """What the discriminator sees in training: augmented (DiffAugment) and/or noised images."""
        if self.config.augment:
            images = adversarial.diff_augment(images)
        if self.config.instance_noise:
            images = images + noise_std * tf.random.normal(tf.shape(images))
        return images

    def train_step(self, data):
        images, _ = common.unpack_images(data)
        real = self._to_model_space(images)
        batch_size = tf.shape(real)[0]
        noise_std = self.instance_noise_std()

        # Phase 1: discriminator on real vs generated; stop_gradient keeps the generator out.
        fake = tf.stop_gradient(self.generator(tf.random.normal((batch_size, self.config.latent_dim)), training=True))
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(self._discriminator_input(real, noise_std), training=True)
            fake_logits = self.discriminator(self._discriminator_input(fake, noise_std), training=True)
            discriminator_loss = adversarial.discriminator_loss(
                real_logits, fake_logits, self.config.loss_mode, self.config.real_label
            )
        variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(discriminator_loss, variables), variables))

        # Phase 2: generator against the (now fixed) discriminator, generator variables only.
        with tf.GradientTape() as tape:
            fake = self.generator(tf.random.normal((batch_size, self.config.latent_dim)), training=True)
            generator_loss = adversarial.generator_loss(self.discriminator(self._discriminator_input(fake, noise_std), training=True),
                                                        self.config.loss_mode)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(generator_loss, variables), variables))

        return self.report_losses({
            "discriminator_loss": discriminator_loss, "generator_loss": generator_loss,
            "discriminator_accuracy": adversarial.discriminator_accuracy(real_logits, fake_logits)})
