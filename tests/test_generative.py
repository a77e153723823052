"""Tests of the generative models on tiny networks and tiny Atari frames (16x16, generated here)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import tensorflow as tf

import generative
from generative import adversarial, cli, common, data
from generative.cyclegan import (
    AutoencoderTranslator, CycleGAN, CycleGANConfig, cycle_consistency_loss, peak_signal_to_noise_ratio,
    unpaired_dataset,
)
from generative.dbvae import (
    DebiasingBatches, DebiasingVAE, DebiasingVAEConfig, latent_sampling_probabilities, make_rare_subgroup_task,
    transform_frames,
)
from generative.gan import GAN, GANConfig, MinibatchStdDev, SpectralConv2D
from generative.vae import VAE, VAEConfig, kl_divergence

SIZE = 16
SHAPE = (3, SIZE, SIZE)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    cache = tmp_path_factory.mktemp("frames")
    return data.collect_frames(["Pong", "Breakout"], num_frames=64, image_size=SIZE, seed=0, cache_dir=cache)


def tiny_vae(**overrides):
    settings = dict(image_shape=SHAPE, architecture="cnn", latent_dim=2, filters=(4, 8), dense_units=8)
    settings.update(overrides)
    return VAE(VAEConfig(**settings))


def tiny_gan():
    return GAN(GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=4, discriminator_filters=4))


def tiny_cyclegan(**overrides):
    settings = dict(source_shape=(1, SIZE, SIZE), target_shape=SHAPE, filters=4, depth=2, discriminator_filters=4,
                    discriminator_depth=2, identity_weight=0.0)
    settings.update(overrides)
    return CycleGAN(CycleGANConfig(**settings))


def tiny_dbvae():
    return DebiasingVAE(DebiasingVAEConfig(image_shape=SHAPE, filters=(4, 8), dense_units=8, latent_dim=2))


# ----------------------------------------------------------------------------- data
def test_collect_frames_shapes_labels_and_cache(frames, tmp_path):
    assert frames.images.shape == (64, 3, SIZE, SIZE) and frames.images.dtype == np.uint8
    assert frames.games == ("Pong", "Breakout")
    assert np.bincount(frames.labels).tolist() == [32, 32]
    as_float = frames.float_images()
    assert as_float.dtype == np.float32 and 0.0 <= as_float.min() and as_float.max() <= 1.0
    # No near-black frames were kept.
    assert (as_float.mean(axis=(1, 2, 3)) >= 0.01).all()
    path = data.save_frame_cache(frames, tmp_path / "cache.npz")
    loaded = data.load_frame_cache(path)
    np.testing.assert_array_equal(loaded.images, frames.images)
    assert loaded.games == frames.games and not list(tmp_path.glob(".*tmp"))


def test_collect_frames_cache_is_reused(tmp_path):
    first = data.collect_frames(["Pong"], num_frames=4, image_size=SIZE, seed=1, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("*.npz")
    second = data.collect_frames(["Pong"], num_frames=4, image_size=SIZE, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.images, second.images)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and cache_file.exists()


def test_frame_dataset_batches(frames):
    images, labels = next(iter(frames.to_dataset(8, seed=0)))
    assert images.shape == (8, 3, SIZE, SIZE) and labels.shape == (8, 2)
    assert frames.grayscale().shape == (64, 1, SIZE, SIZE)


@pytest.mark.parametrize("bad", [dict(games=[]), dict(games=["Pong", "Pong"]), dict(games=["NoSuchGame"])])
def test_collect_frames_rejects_bad_games(bad):
    with pytest.raises(ValueError):
        data.collect_frames(bad["games"], num_frames=4, image_size=SIZE)


# ----------------------------------------------------------------------------- losses
def test_kl_divergence_matches_closed_form():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_var = rng.normal(size=(5, 3)).astype(np.float32)
    sigma = np.exp(0.5 * log_var)
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2) / 2 - 1/2, per dimension.
    expected = (np.log(1.0 / sigma) + (sigma**2 + mean**2) / 2.0 - 0.5).sum(axis=1)
    np.testing.assert_allclose(kl_divergence(mean, log_var).numpy(), expected, rtol=1e-5)
    assert float(tf.reduce_max(tf.abs(kl_divergence(np.zeros((2, 3)), np.zeros((2, 3)))))) == 0.0


def test_adversarial_losses_by_hand():
    logits_real = np.array([2.0, -1.0], np.float32)
    logits_fake = np.array([0.5], np.float32)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = 0.5 * (softplus(-logits_real).mean() + softplus(logits_fake).mean())
    assert float(adversarial.discriminator_loss(logits_real, logits_fake)) == pytest.approx(expected, rel=1e-5)
    assert float(adversarial.generator_loss(logits_fake)) == pytest.approx(softplus(-0.5), rel=1e-5)
    assert float(adversarial.discriminator_loss(np.ones(3), np.zeros(3), mode="lsgan")) == 0.0
    assert float(adversarial.generator_loss(np.ones((2, 2, 2, 1)), mode="lsgan")) == 0.0
    assert float(adversarial.discriminator_accuracy(logits_real, logits_fake)) == pytest.approx(1 / 3)
    np.testing.assert_allclose(adversarial.expert_reward(np.array([0.0])).numpy(), [np.log(2.0)], rtol=1e-6)
    with pytest.raises(ValueError, match="'wgan'"):
        adversarial.generator_loss(logits_fake, mode="wgan")
    # hinge: mean(relu(1 - real)) and mean(relu(1 + fake)), halves averaged; G: -mean(fake)
    hinge = 0.5 * (np.mean([max(0, 1 - 2.0), max(0, 1 + 1.0)]) + max(0, 1 + 0.5))
    assert float(adversarial.discriminator_loss(logits_real, logits_fake, mode="hinge")) == pytest.approx(hinge)
    assert float(adversarial.generator_loss(logits_fake, mode="hinge")) == pytest.approx(-0.5)


def test_diff_augment_translates_and_cuts_out_per_image_and_passes_gradients():
    tf.random.set_seed(0)
    images = tf.ones((16, 8, 8, 3))
    shifted = adversarial.diff_augment(images, translation=0.25, cutout=0.0).numpy()
    assert set(np.unique(shifted)) <= {0.0, 1.0}  # zero fill, no interpolation
    zero_rows = (shifted[..., 0] == 0).all(axis=2).sum(axis=1)  # per image, up to 2 rows shifted out
    assert zero_rows.max() <= 2 and len(set(zero_rows.tolist())) > 1  # shifts differ between images
    cut = adversarial.diff_augment(images, translation=0.0, cutout=0.5).numpy()
    holes = (cut[..., 0] == 0).sum(axis=(1, 2))
    assert 0 < holes.min() and holes.max() <= 3 * 3  # a square of side < 4 (odd, centred, clipped)
    np.testing.assert_array_equal(cut[..., 0], cut[..., 2])  # the same hole in every channel
    variable = tf.Variable(tf.ones((2, 8, 8, 1)))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(adversarial.diff_augment(variable))
    assert float(tf.reduce_sum(tape.gradient(total, variable))) == pytest.approx(float(total))


def test_mlp_discriminator_shape():
    discriminator = adversarial.build_mlp_discriminator(5, hidden_units=(8, 8), batch_norm=True)
    assert tuple(discriminator(np.zeros((4, 5), np.float32)).shape) == (4, 1)
    with pytest.raises(ValueError, match="input_dim"):
        adversarial.build_mlp_discriminator(0)


def test_cycle_loss_is_zero_for_identity_generators():
    from keras import layers

    model = tiny_cyclegan(source_shape=SHAPE, identity_weight=1.0)
    model.compile()
    model.source_to_target = layers.Identity()
    model.target_to_source = layers.Identity()
    rng = np.random.default_rng(0)
    source, target = rng.random((2, *SHAPE), dtype=np.float32), rng.random((2, *SHAPE), dtype=np.float32)
    losses = model.compute_losses(source, target)
    assert float(losses["cycle_loss"]) == 0.0 and float(losses["identity_loss"]) == 0.0
    assert float(cycle_consistency_loss(source, source + 0.25)) == pytest.approx(0.25)


def test_patchgan_and_scalar_discriminator_shapes():
    patch = tiny_cyclegan(patchgan=True)
    scalar = tiny_cyclegan(patchgan=False)
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    assert tuple(patch.target_discriminator(images).shape) == (2, SIZE // 4, SIZE // 4, 1)
    assert tuple(scalar.target_discriminator(images).shape) == (2, 1)


def test_latent_sampling_probabilities_favor_rare_codes():
    latent = np.concatenate([np.zeros((95, 1)), np.full((5, 1), 10.0)]) + np.random.default_rng(0).normal(0, 0.1, (100, 1))
    probabilities = latent_sampling_probabilities(latent, num_bins=10)
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[95:].min() > 5 * probabilities[:95].max()


# ----------------------------------------------------------------------------- shapes and bad input
def test_vae_variants_shapes(frames):
    images, labels = frames.float_images()[:4], frames.labels[:4]
    for model in (tiny_vae(), tiny_vae(architecture="mlp", hidden_units=8), tiny_vae(num_classes=2, beta=4.0)):
        condition = labels if model.config.conditional else None
        mean, log_var = model.encode(images, condition)
        assert mean.shape == (4, 2) and log_var.shape == (4, 2)
        reconstruction = model.reconstruct(images, condition)
        assert reconstruction.shape == (4, *SHAPE)
        assert 0.0 <= float(tf.reduce_min(reconstruction)) and float(tf.reduce_max(reconstruction)) <= 1.0


@pytest.mark.parametrize("make_model, call", [
    (tiny_vae, lambda model, images: model.encode(images)),
    (tiny_gan, lambda model, images: model.discriminate(images)),
    (tiny_cyclegan, lambda model, images: model.translate_back(images)),
    (tiny_dbvae, lambda model, images: model.predict_proba(images)),
])
def test_channel_last_input_raises_clear_error(make_model, call):
    model = make_model()
    channel_last = np.zeros((2, SIZE, SIZE, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(2, 16, 16, 3\).*channel-last.*\(batch, 3, 16, 16\)"):
        call(model, channel_last)
    wrong_size = np.zeros((2, 3, 32, 32), np.float32)
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\), expected \(batch, 3, 16, 16\)"):
        call(model, wrong_size)


def test_fit_with_wrong_image_size_raises(frames):
    model = tiny_vae(image_shape=(3, 32, 32))
    model.compile()
    with pytest.raises(ValueError, match=r"expected \(batch, 3, 32, 32\)"):
        model.fit(frames.to_dataset(8), epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)


@pytest.mark.parametrize("bad_config", [
    lambda: VAEConfig(architecture="rnn"),
    lambda: VAEConfig(image_shape=(3, 30, 30)),
    lambda: GANConfig(image_shape=(3, 48, 48)),
    lambda: CycleGANConfig(source_shape=(1, 64, 64), target_shape=(3, 64, 64), identity_weight=1.0),
    lambda: CycleGANConfig(source_shape=(3, 32, 32), target_shape=(3, 64, 64)),
])
def test_bad_configs_raise(bad_config):
    with pytest.raises(ValueError):
        bad_config()


def test_conditional_vae_needs_labels(frames):
    with pytest.raises(ValueError, match="needs labels"):
        tiny_vae(num_classes=2).encode(frames.float_images()[:2])


# ----------------------------------------------------------------------------- training + save/load
def _fit_and_check(model, dataset, tmp_path, sample_fn, steps=2, **fit_kwargs):
    # Most tests compile with run_eagerly=True: for two steps of a tiny model, tracing the
    # graph costs more than the steps; the VAE test and the CLI tests run the compiled graph.
    history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, **fit_kwargs)
    assert all(np.isfinite(values[-1]) for values in history.history.values()), history.history
    path = model.save(tmp_path / f"{model.model_name}.zip")
    loaded = type(model).load(path)
    np.testing.assert_array_equal(np.asarray(sample_fn(model)), np.asarray(sample_fn(loaded)))
    assert type(generative.load_model(path)) is type(model)
    return history


def test_vae_trains_logs_and_round_trips(frames, tmp_path):
    common.seed_everything(0)
    model = tiny_vae(num_classes=2)
    model.compile()
    images, labels = frames.float_images()[:4], frames.labels[:4]
    callback = common.GenerativeTensorBoard(tmp_path / "logs", log_every_steps=1, num_preview=4)
    history = _fit_and_check(model, frames.to_dataset(8, repeat=True), tmp_path,
                             lambda m: m.reconstruct(images, labels), callbacks=[callback])
    assert {"loss", "reconstruction_loss", "kl_loss"} <= set(history.history)
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_gan_trains_only_the_right_variables_and_round_trips(frames, tmp_path):
    common.seed_everything(0)
    model = tiny_gan()
    model.compile(run_eagerly=True)
    _fit_and_check(model, frames.to_dataset(8, repeat=True, with_labels=False), tmp_path,
                   lambda m: m.generate(3, seed=1))
    assert model.generator_optimizer.iterations.numpy() == 2 == model.discriminator_optimizer.iterations.numpy()


@pytest.mark.parametrize("normalization", ["batch", "spectral"])
def test_generator_step_leaves_discriminator_unchanged(normalization):
    """Phase 2 of the update must not move the discriminator: check with a zero-lr discriminator."""
    import keras

    common.seed_everything(0)
    model = GAN(GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=4, discriminator_filters=4,
                          discriminator_normalization=normalization))
    model.compile(discriminator_optimizer=keras.optimizers.SGD(0.0))
    before = [w.numpy().copy() for w in model.discriminator.trainable_variables]
    generator_before = [w.numpy().copy() for w in model.generator.trainable_variables]
    model.train_step(np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32))
    for old, new in zip(before, model.discriminator.trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())
    assert any(not np.array_equal(old, new.numpy()) for old, new in zip(generator_before, model.generator.trainable_variables))


def test_generator_loss_decreases_against_frozen_discriminator():
    """The generator's gradients flow: with the discriminator frozen, a few steps lower its loss."""
    import keras

    common.seed_everything(0)
    model = GAN(GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=4, discriminator_filters=4,
                          discriminator_normalization="none"))  # no BN: a zero-lr D is then fully frozen
    model.compile(discriminator_optimizer=keras.optimizers.SGD(0.0), generator_optimizer=keras.optimizers.Adam(1e-3))
    latent = tf.random.normal((16, 4), seed=1)

    def generator_loss():
        fake = model.generator(latent, training=True)
        return float(adversarial.generator_loss(model.discriminator(fake, training=False)))

    with tf.GradientTape() as tape:
        loss = adversarial.generator_loss(model.discriminator(model.generator(latent, training=True)))
    gradients = tape.gradient(loss, model.generator.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
    real = np.random.default_rng(0).random((16, *SHAPE), dtype=np.float32)
    # Make the discriminator informative first (its own optimizer, outside the GAN's), then freeze it.
    discriminator_optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = adversarial.discriminator_loss(model.discriminate(real), model.discriminator(
                model.generator(latent, training=True), training=False))
        variables = model.discriminator.trainable_variables
        discriminator_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    frozen = [w.numpy().copy() for w in model.discriminator.weights]
    before = generator_loss()
    for _ in range(15):
        model.train_step(real)
    assert generator_loss() < 0.8 * before
    for old, new in zip(frozen, model.discriminator.weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_gan_dcgan_init_and_instance_noise_decay():
    common.seed_everything(0)
    model = GAN(GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=8, discriminator_filters=8,
                          instance_noise=0.2, instance_noise_steps=4))
    model.compile()
    kernel = model.discriminator.get_layer("conv_1").kernel.numpy()
    assert abs(kernel.mean()) < 0.01 and 0.015 < kernel.std() < 0.025  # normal(0, 0.02)
    assert float(model.instance_noise_std()) == pytest.approx(0.2)
    real = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
    model.train_step(real)
    model.train_step(real)
    assert float(model.instance_noise_std()) == pytest.approx(0.1)
    for _ in range(3):
        model.train_step(real)
    assert float(model.instance_noise_std()) == 0.0
    with pytest.raises(ValueError, match="real_label"):
        GANConfig(image_shape=SHAPE, real_label=0.0)


def test_sngan_discriminator_options_train_and_round_trip(frames, tmp_path):
    common.seed_everything(0)
    config = GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=4, discriminator_filters=4,
                       loss_mode="hinge", discriminator_normalization="spectral", minibatch_std=True, augment=True)
    model = GAN(config)
    model.compile()
    names = [layer.name for layer in model.discriminator.layers]
    assert "minibatch_std" in names and isinstance(model.discriminator.get_layer("conv_1"), SpectralConv2D)
    assert not any("batch_norm" in name for name in names)
    _fit_and_check(model, frames.to_dataset(8, repeat=True, with_labels=False), tmp_path,
                   lambda m: m.discriminate(frames.float_images()[:3]), steps=3)
    # spectral normalization: the largest singular value of each trained kernel is ~1
    layer = model.discriminator.get_layer("conv_1")
    for _ in range(30):  # power iterations converge on the largest singular value
        kernel = layer.normalized_kernel(training=True).numpy()
    assert np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)
    # the minibatch-std channel: identical images in a batch give std 0
    features = np.ones((4, 2, 2, 3), np.float32)
    np.testing.assert_allclose(MinibatchStdDev()(features).numpy()[..., -1], 1e-4, rtol=1e-3)
    with pytest.raises(ValueError, match="discriminator_normalization must be one of"):
        GANConfig(image_shape=SHAPE, discriminator_normalization="layer")


def test_gan_saved_before_discriminator_normalization_still_loads(tmp_path):
    """Archives from before the SNGAN options (boolean discriminator_batch_norm) load as DCGANs."""
    from agents_zoo.core.serialization import load_archive, save_archive

    common.seed_everything(0)
    dcgan = GAN(GANConfig(image_shape=SHAPE, latent_dim=4, generator_filters=4, discriminator_filters=4,
                          loss_mode="bce", discriminator_normalization="batch", minibatch_std=False, augment=False))
    archive = load_archive(dcgan.save(tmp_path / "new.zip"))
    old_config = {k: v for k, v in archive.config.items()
                  if k not in ("discriminator_normalization", "minibatch_std", "augment")}
    old_config["discriminator_batch_norm"] = True
    old = save_archive(tmp_path / "old.zip", kind=archive.kind, config=old_config, arrays=archive.arrays,
                       metadata=archive.metadata)
    loaded = GAN.load(old)
    assert (loaded.config.discriminator_normalization, loaded.config.minibatch_std, loaded.config.augment) == (
        "batch", False, False)
    np.testing.assert_array_equal(np.asarray(loaded.generate(2, seed=1)), np.asarray(dcgan.generate(2, seed=1)))


def test_cyclegan_and_autoencoder_train_and_round_trip(frames, tmp_path):
    common.seed_everything(0)
    gray, color = frames.grayscale(), frames.float_images()
    model = tiny_cyclegan()
    model.compile(run_eagerly=True)
    model.set_preview(gray[:2])
    _fit_and_check(model, unpaired_dataset(gray, color, 8), tmp_path, lambda m: m.translate(gray[:3]))
    assert model.preview_images(4).shape == (4, 3, SIZE, SIZE)
    baseline = AutoencoderTranslator(model.config)
    baseline.compile(run_eagerly=True)
    paired = data.make_image_dataset(gray, color, batch_size=8, repeat=True)
    _fit_and_check(baseline, paired, tmp_path, lambda m: m.translate(gray[:3]))
    psnr = peak_signal_to_noise_ratio(np.asarray(baseline.translate(gray)), color)
    assert np.isfinite(psnr) and psnr > 0


def test_dbvae_trains_with_resampling_and_round_trips(frames, tmp_path):
    common.seed_everything(0)
    images, labels, is_rare = make_rare_subgroup_task(frames.float_images(), frames.labels, rare_fraction=0.2, seed=0)
    assert is_rare.any() and set(np.unique(labels)) == {0, 1}
    model = tiny_dbvae()
    model.compile(run_eagerly=True)
    batches = DebiasingBatches(model, images, labels, batch_size=8, debias=True, seed=0)
    _fit_and_check(model, batches, tmp_path, lambda m: m.predict_proba(images[:5]))
    batches.resample()
    assert batches.positive_probabilities.sum() == pytest.approx(1.0)
    assert len(batches) == len(images) // 8


def test_rare_subgroup_transforms(frames):
    images = frames.float_images()[:4]
    np.testing.assert_allclose(transform_frames(images, "invert"), 1.0 - images)
    shifted = transform_frames(images, "channel_shift")
    np.testing.assert_array_equal(shifted[:, 0], images[:, 1])
    np.testing.assert_array_equal(shifted[:, 2], images[:, 0])
    np.testing.assert_allclose(transform_frames(images, "invert_channel_shift"), 1.0 - shifted)
    with pytest.raises(ValueError, match="transform"):
        transform_frames(images, "blur")
    task, labels, is_rare = make_rare_subgroup_task(frames.float_images(), frames.labels, rare_fraction=1.0,
                                                    negative_transformed_fraction=0.0, transform="channel_shift")
    positives = frames.labels == 0
    assert is_rare.tolist() == positives.tolist() and labels.tolist() == positives.astype(int).tolist()
    np.testing.assert_array_equal(task[~positives], frames.float_images()[~positives])


def test_latent_plots(frames, tmp_path):
    model = tiny_vae()
    generative.plot_latent_space(model, frames.float_images(), frames.labels, tmp_path / "space.png", frames.games)
    generative.plot_latent_traversal(model, tmp_path / "traversal.png", values=[-1, 0, 1])
    generative.plot_latent_traversal(model, tmp_path / "grid.png", values=[-1, 1], grid_2d=True)
    for name in ("space.png", "traversal.png", "grid.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- CLI
def _parse(argv):
    parser = argparse.ArgumentParser(prog="agents-zoo")
    cli.add_subcommand(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_help_lists_models(capsys):
    with pytest.raises(SystemExit):
        _parse(["generative", "train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--envs" in out and "cyclegan" in out and "--batch-size" in out
    # the GAN options' help states GANConfig's real defaults
    defaults = GANConfig()
    assert f"adversarial loss (default: {defaults.loss_mode})" in out
    assert f"discriminator (default: {defaults.discriminator_normalization})" in out
    assert f"inputs (default: {'on' if defaults.augment else 'off'})" in out
    assert f"in the discriminator (default: {'on' if defaults.minibatch_std else 'off'})" in out
    assert f"networks (default: {defaults.learning_rate:.0e}".replace("e-0", "e-") in out
    # the choices are spelled out (no TF import to build the parser); they must be GANConfig's
    from generative.gan import DISCRIMINATOR_NORMALIZATIONS

    assert "--loss {" + ",".join(adversarial.LOSS_MODES) + "}" in out
    assert "--discriminator-norm {" + ",".join(DISCRIMINATOR_NORMALIZATIONS) + "}" in out


@pytest.mark.parametrize("model, extra", [("vae", ["--architecture", "mlp"]), ("gan", ["--filters", "4"]),
                                          ("gan", ["--filters", "4", "--loss", "bce", "--discriminator-norm", "batch",
                                                   "--no-augment", "--no-minibatch-std", "--learning-rate", "1e-4"])])
def test_cli_train_tiny_budget(model, extra, tmp_path):
    out = tmp_path / model
    args = _parse(["generative", "train", model, "--envs", "Pong", "Breakout", "--steps", "2", "--batch-size", "8",
                   "--frames", "16", "--image-size", str(SIZE), "--out", str(out), "--seed", "0", "--quiet", *extra])
    assert cli.run(args) == 0
    assert (out / "model.zip").is_file() and (out / "samples.png").is_file()
    summary = json.loads((out / "config.json").read_text())
    assert summary["model"] == model and summary["steps"] == 2
    loaded = generative.load_model(out / "model.zip")
    if "--loss" in extra:
        assert (loaded.config.loss_mode, loaded.config.discriminator_normalization, loaded.config.augment,
                loaded.config.minibatch_std, loaded.config.learning_rate) == ("bce", "batch", False, False, 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("model, extra", [("cvae", []), ("beta-vae", []), ("cyclegan", ["--task", "games"]),
                                          ("cyclegan", ["--task", "colorize"]), ("dbvae", [])])
def test_cli_train_other_models(model, extra, tmp_path):
    args = _parse(["generative", "train", model, "--envs", "Pong", "Breakout", "--steps", "2", "--batch-size", "8",
                   "--frames", "32", "--image-size", "32", "--filters", "4", "--out", str(tmp_path), "--quiet", *extra])
    assert cli.run(args) == 0
    assert (tmp_path / "model.zip").is_file()


def test_keras_dataset_loader_validates_name():
    with pytest.raises(ValueError, match="'svhn'"):
        data.load_keras_dataset("svhn")


@pytest.mark.slow
def test_benchmark_script_quick(tmp_path):
    from benchmarks import bench_generative

    assert bench_generative.main(["--quick", "--only", "vae", "dbvae", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "generative_quick.json").read_text())
    assert {row["model"] for row in report["rows"]} >= {"vae-cnn", "dbvae (resampling)"}
    assert (tmp_path / "generative_quick.md").read_text().startswith("# Generative")


def test_benchmark_downsample_averages_pixels(frames):
    from benchmarks.bench_generative import downsample

    small = downsample(frames, SIZE // 2)
    assert small.images.shape == (len(frames), 3, SIZE // 2, SIZE // 2) and small.images.dtype == np.uint8
    expected = frames.images[:, :, :2, :2].astype(np.float32).mean(axis=(2, 3))
    np.testing.assert_allclose(small.images[:, :, 0, 0], np.round(expected))
    assert downsample(frames, SIZE) is frames
