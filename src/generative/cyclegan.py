"""CycleGAN (Zhu et al. 2017) for unpaired image-to-image translation, plus the paired
autoencoder baseline it is compared with.

Two U-Net generators (source -> target and target -> source) and two discriminators (one per
domain, either scalar or PatchGAN: a patch of logits, one per receptive field). The generators
minimize the adversarial loss of both directions plus ``cycle_weight`` times the L1
cycle-consistency loss ``|F(G(x)) - x| + |G(F(y)) - y|`` (paper eq. 2) plus ``identity_weight``
times the identity loss ``|G(y) - y| + |F(x) - x|`` (paper section 5.2, only defined when both
domains have the same channels). Least-squares adversarial losses by default, as in the paper.

Tasks used here: grayscale -> color Atari frames (colorization, source (1, H, W), target
(3, H, W), no identity loss) and game A <-> game B frames.

Example:
    >>> model = CycleGAN(CycleGANConfig(source_shape=(1, 16, 16), target_shape=(3, 16, 16),
    ...                                 filters=4, depth=2, identity_weight=0.0))
    >>> model.compile()
    >>> tuple(model.translate(np.zeros((2, 1, 16, 16), np.float32)).shape)
    (2, 3, 16, 16)
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agents_zoo.core.config import (Config, check_bool, check_choice, check_int, check_int_tuple, check_number,
                                    check_positive, field)
from generative import adversarial, common


@dataclasses.dataclass
class CycleGANConfig(Config):
    """Hyperparameters of :class:`CycleGAN` (and :class:`AutoencoderTranslator`)."""

    source_shape: tuple[int, int, int] = field((3, 64, 64), doc="channel-first shape (C, H, W) of source-domain "
                                                                "images, e.g. (1, 64, 64) for grayscale")
    target_shape: tuple[int, int, int] = field((3, 64, 64), doc="channel-first shape (C, H, W) of target-domain "
                                                                "images; same H and W as the source")
    filters: int = field(32, doc="filters of the generators' first layer, doubled at each stride-2 layer")
    depth: int = field(3, doc="number of stride-2 layers in each generator's encoder (and upsamplings in its decoder)")
    discriminator_filters: int = field(32, doc="filters of the discriminators' first layer, doubled at each "
                                               "stride-2 layer")
    discriminator_depth: int = field(3, doc="stride-2 layers in each discriminator; a 64x64 input gives an 8x8 "
                                            "patch at depth 3")
    patchgan: bool = field(True, doc="true: discriminators output a patch of logits; false: one scalar logit per "
                                     "image")
    cycle_weight: float = field(10.0, doc="lambda of the cycle-consistency loss (paper: 10)")
    identity_weight: float = field(5.0, doc="weight of the identity loss (paper: 0.5 * lambda); must be 0 when "
                                            "channels differ")
    loss_mode: str = field("lsgan", doc="adversarial objective: 'lsgan' (paper), 'bce' or 'hinge'")
    learning_rate: float = field(2e-4, doc="Adam learning rate for generators and discriminators (paper)")
    beta_1: float = field(0.5, doc="Adam beta_1 (paper)")

    def validate(self) -> None:
        check_int_tuple(self, "source_shape", length=3, layout="(C, H, W)")
        check_int_tuple(self, "target_shape", length=3, layout="(C, H, W)")
        if self.source_shape[1:] != self.target_shape[1:]:
            raise ValueError(
                f"source and target must have the same H and W, got {self.source_shape} and {self.target_shape}"
            )
        for name in ("filters", "depth", "discriminator_filters", "discriminator_depth"):
            check_int(self, name, minimum=1)
        factor = 2 ** max(self.depth, self.discriminator_depth)
        if self.source_shape[1] % factor or self.source_shape[2] % factor:
            raise ValueError(
                f"H and W must be divisible by 2**max(depth, discriminator_depth) = {factor}, "
                f"got image size {self.source_shape[1:]} with depth={self.depth}, "
                f"discriminator_depth={self.discriminator_depth}"
            )
        check_bool(self, "patchgan")
        check_number(self, "cycle_weight", minimum=0.0)
        check_number(self, "identity_weight", minimum=0.0)
        if self.identity_weight > 0 and self.source_shape[0] != self.target_shape[0]:
            raise ValueError(
                f"identity_weight={self.identity_weight} needs equal channels, but source has "
                f"{self.source_shape[0]} and target {self.target_shape[0]}: set identity_weight=0"
            )
        check_choice(self, "loss_mode", adversarial.LOSS_MODES)
        check_positive(self, "learning_rate")
        check_number(self, "beta_1", minimum=0.0, maximum=1.0, exclusive_max=True)


def _instance_norm(name: str) -> layers.Layer:
    # Instance normalization (groups=-1: one group per channel), as the CycleGAN paper uses.
    return layers.GroupNormalization(groups=-1, name=name)


def build_unet_generator(input_shape: tuple[int, int, int], output_channels: int, filters: int, depth: int,
                         skip_connections: bool = True, name: str = "generator") -> keras.Model:
    """NHWC [-1, 1] -> NHWC [-1, 1]; an encoder-decoder, with U-Net skips unless told otherwise."""
    channels, height, width = input_shape
    images = keras.Input((height, width, channels), name="image")
    hidden = images
    skips = []
    for index in range(depth):
        hidden = layers.Conv2D(filters * 2**index, 4, strides=2, padding="same", name=f"down_{index}")(hidden)
        if index > 0:
            hidden = _instance_norm(f"down_norm_{index}")(hidden)
        hidden = layers.LeakyReLU(0.2, name=f"down_act_{index}")(hidden)
        skips.append(hidden)
    for index in reversed(range(depth - 1)):
        hidden = layers.Conv2DTranspose(filters * 2**index, 4, strides=2, padding="same", name=f"up_{index}")(hidden)
        hidden = _instance_norm(f"up_norm_{index}")(hidden)
        hidden = layers.ReLU(name=f"up_act_{index}")(hidden)
        if skip_connections:
            # U-Net: the decoder sees the encoder's features at the same resolution (Ronneberger 2015).
            hidden = layers.Concatenate(name=f"skip_{index}")([hidden, skips[index]])
    outputs = layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same", activation="tanh",
                                     name="to_image")(hidden)
    return keras.Model(images, outputs, name=name)


def build_discriminator(input_shape: tuple[int, int, int], filters: int, depth: int, patchgan: bool,
                        name: str = "discriminator") -> keras.Model:
    """NHWC [-1, 1] -> logits: (N, H / 2**depth, W / 2**depth, 1) for PatchGAN, else (N, 1)."""
    channels, height, width = input_shape
    images = keras.Input((height, width, channels), name="image")
    hidden = images
    for index in range(depth):
        hidden = layers.Conv2D(filters * 2**index, 4, strides=2, padding="same", name=f"conv_{index}")(hidden)
        if index > 0:
            hidden = _instance_norm(f"norm_{index}")(hidden)
        hidden = layers.LeakyReLU(0.2, name=f"act_{index}")(hidden)
    if patchgan:
        logits = layers.Conv2D(1, 4, padding="same", name="patch_logits")(hidden)
    else:
        logits = layers.Dense(1, name="logit")(layers.Flatten(name="flatten")(hidden))
    return keras.Model(images, logits, name=name)


def cycle_consistency_loss(real, cycled) -> tf.Tensor:
    """Mean absolute error between an image and its round trip (L1, paper eq. 2)."""
    return tf.reduce_mean(tf.abs(tf.cast(real, tf.float32) - tf.cast(cycled, tf.float32)))


def _to_model_space(images, expected_chw, what):
    images = tf.convert_to_tensor(images, tf.float32)
    common.check_image_shape(images.shape, expected_chw, what)
    return common.to_channels_last(images) * 2.0 - 1.0


def _to_image_space(images_nhwc):
    return common.to_channels_first((images_nhwc + 1.0) * 0.5)


class CycleGAN(common.ArchivedModel, keras.Model):
    """CycleGAN; ``fit`` takes batches ``(source_images, target_images)``, channel-first in [0, 1].

    The two batches need not be paired: use :func:`unpaired_dataset`.
    """

    model_name = "cyclegan"
    config_class = CycleGANConfig

    def __init__(self, config: CycleGANConfig | None = None, **kwargs):
        super().__init__(config, loss_names=("loss", "generator_adversarial_loss", "cycle_loss", "identity_loss",
                                             "discriminator_loss"), **kwargs)
        config = self.config
        self.source_to_target = build_unet_generator(config.source_shape, config.target_shape[0], config.filters,
                                                     config.depth, name="source_to_target")
        self.target_to_source = build_unet_generator(config.target_shape, config.source_shape[0], config.filters,
                                                     config.depth, name="target_to_source")
        self.source_discriminator = build_discriminator(config.source_shape, config.discriminator_filters,
                                                        config.discriminator_depth, config.patchgan, "source_discriminator")
        self.target_discriminator = build_discriminator(config.target_shape, config.discriminator_filters,
                                                        config.discriminator_depth, config.patchgan, "target_discriminator")
        self.preview_source = None
        self.built = True

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """One optimizer for both generators, one for both discriminators (Adam from the config)."""
        make_adam = lambda: keras.optimizers.Adam(self.config.learning_rate, beta_1=self.config.beta_1)  # noqa: E731
        self.generator_optimizer = generator_optimizer or make_adam()
        self.discriminator_optimizer = discriminator_optimizer or make_adam()
        self.generator_optimizer.build(self._generator_variables())
        self.discriminator_optimizer.build(self._discriminator_variables())
        super().compile(**kwargs)

    def _generator_variables(self):
        return self.source_to_target.trainable_variables + self.target_to_source.trainable_variables

    def _discriminator_variables(self):
        return self.source_discriminator.trainable_variables + self.target_discriminator.trainable_variables

    # ------------------------------------------------------------------ public API
    def translate(self, source_images):
        """Source-domain images (N, C, H, W) in [0, 1] -> target domain, channel-first in [0, 1]."""
        source = _to_model_space(source_images, self.config.source_shape, "CycleGAN source images")
        return _to_image_space(self.source_to_target(source, training=False))

    def translate_back(self, target_images):
        """Target-domain images -> source domain, channel-first in [0, 1]."""
        target = _to_model_space(target_images, self.config.target_shape, "CycleGAN target images")
        return _to_image_space(self.target_to_source(target, training=False))

    def set_preview(self, source_images) -> None:
        """Source images whose translations :class:`~generative.common.GenerativeTensorBoard` logs."""
        self.preview_source = np.asarray(source_images, np.float32)

    def preview_images(self, num_images: int = 16):
        """Rows of source images followed by their translations (None until set_preview)."""
        if self.preview_source is None:
            return None
        source = self.preview_source[: max(1, num_images // 2)]
        translated = np.asarray(self.translate(source))
        as_rgb = lambda images: np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images  # noqa: E731
        return np.concatenate([as_rgb(source), as_rgb(translated)])

    def call(self, source_images, training=False):
        return self.translate(source_images)

    # ------------------------------------------------------------------ training
    def compute_losses(self, source_images, target_images, training=False):
        """All losses for one batch pair: a dict of scalars, generator total under 'loss'."""
        config = self.config
        source = _to_model_space(source_images, config.source_shape, "CycleGAN source images")
        target = _to_model_space(target_images, config.target_shape, "CycleGAN target images")
        fake_target = self.source_to_target(source, training=training)
        fake_source = self.target_to_source(target, training=training)
        cycle = (cycle_consistency_loss(source, self.target_to_source(fake_target, training=training))
                 + cycle_consistency_loss(target, self.source_to_target(fake_source, training=training)))
        generator_adversarial = (
            adversarial.generator_loss(self.target_discriminator(fake_target, training=training), config.loss_mode)
            + adversarial.generator_loss(self.source_discriminator(fake_source, training=training), config.loss_mode)
        )
        identity = tf.constant(0.0)
        if config.identity_weight > 0:
            # A generator fed an image already in its output domain should leave it unchanged.
            identity = (cycle_consistency_loss(target, self.source_to_target(target, training=training))
                        + cycle_consistency_loss(source, self.target_to_source(source, training=training)))
        discriminator = (
            adversarial.discriminator_loss(self.target_discriminator(target, training=training),
                                           self.target_discriminator(tf.stop_gradient(fake_target), training=training),
                                           config.loss_mode)
            + adversarial.discriminator_loss(self.source_discriminator(source, training=training),
                                             self.source_discriminator(tf.stop_gradient(fake_source), training=training),
                                             config.loss_mode)
        )
        total = generator_adversarial + config.cycle_weight * cycle + config.identity_weight * identity
        return {"loss": total, "generator_adversarial_loss": generator_adversarial, "cycle_loss": cycle,
                "identity_loss": identity, "discriminator_loss": discriminator}

    def train_step(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("CycleGAN.fit needs batches of (source_images, target_images); see unpaired_dataset()")
        with tf.GradientTape(persistent=True) as tape:
            losses = self.compute_losses(data[0], data[1], training=True)
        # Each side is updated only with its own gradients: the discriminator loss sees the
        # generated images through stop_gradient, the generator loss leaves the discriminators alone.
        for loss_name, optimizer, variables in (
            ("loss", self.generator_optimizer, self._generator_variables()),
            ("discriminator_loss", self.discriminator_optimizer, self._discriminator_variables()),
        ):
            optimizer.apply_gradients(zip(tape.gradient(losses[loss_name], variables), variables))
        del tape
        return self.report_losses(losses)


class AutoencoderTranslator(common.ArchivedModel, keras.Model):
    """The paired baseline: one encoder-decoder (no skips) trained with MSE on (source, target) pairs.

    Same generator builder and sizes as :class:`CycleGAN`, so a comparison isolates the training
    signal (paired regression vs unpaired adversarial + cycle).
    """

    model_name = "autoencoder_translator"
    config_class = CycleGANConfig

    def __init__(self, config: CycleGANConfig | None = None, **kwargs):
        super().__init__(config or CycleGANConfig(identity_weight=0.0), loss_names=("loss",), **kwargs)
        self.network = build_unet_generator(self.config.source_shape, self.config.target_shape[0], self.config.filters,
                                            self.config.depth, skip_connections=False, name="autoencoder")
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), **kwargs)

    def translate(self, source_images):
        source = _to_model_space(source_images, self.config.source_shape, "autoencoder source images")
        return _to_image_space(self.network(source, training=False))

    def call(self, source_images, training=False):
        return self.translate(source_images)

    def train_step(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("AutoencoderTranslator.fit needs paired batches (source_images, target_images)")
        source = _to_model_space(data[0], self.config.source_shape, "autoencoder source images")
        target = _to_model_space(data[1], self.config.target_shape, "autoencoder target images")
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.network(source, training=True) - target))
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self.report_losses({"loss": loss})



def unpaired_dataset(source_images: np.ndarray, target_images: np.ndarray, batch_size: int, seed: int = 0,
                     repeat: bool = True):
    """Zip two independently shuffled image sets: CycleGAN never sees which images correspond."""
    from generative.data import make_image_dataset

    source = make_image_dataset(source_images, batch_size=batch_size, seed=seed, repeat=repeat)
    target = make_image_dataset(target_images, batch_size=batch_size, seed=seed + 1, repeat=repeat)
    return tf.data.Dataset.zip((source, target))


def peak_signal_to_noise_ratio(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Mean PSNR in dB over images in [0, 1]: 10 log10(1 / MSE) per image, averaged."""
    predicted = np.asarray(predicted, np.float64)
    reference = np.asarray(reference, np.float64)
    if predicted.shape != reference.shape:
        raise ValueError(f"PSNR needs equal shapes, got {predicted.shape} and {reference.shape}")
    mse = np.mean((predicted - reference) ** 2, axis=tuple(range(1, reference.ndim)))
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))))
