"""``agents-zoo generative train MODEL ...``: train a generative model on Atari frames.

The ``agents-zoo`` command line (:mod:`agents_zoo.cli`) calls :func:`add_subcommand` with its
subparsers and :func:`run` with the parsed arguments. TensorFlow is imported only inside :func:`run`, so ``--help`` stays fast.

Every setting of a model's config (:class:`agents_zoo.core.config.Config`) is reachable with
``--config key=value``, typed and checked as the agents' ``train --config`` is; ``--list-config``
lists them with their defaults.

Example:
    agents-zoo generative train vae --envs Pong Breakout --steps 500 --out runs/vae
    agents-zoo generative train vae --config beta=2 filters=[16,32] --out runs/vae
    agents-zoo generative train cyclegan --task colorize --envs Pong --steps 200 --out runs/color
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import time
from pathlib import Path
from typing import Any

from agents_zoo.core.cli_args import (check_output_path, non_negative_int, parse_key_values, positive_float,
                                      positive_int)

# ``generative train gan`` option (argparse dest) -> GANConfig field.
GAN_OPTIONS = {"loss": "loss_mode", "discriminator_norm": "discriminator_normalization",
               "minibatch_std": "minibatch_std", "augment": "augment", "learning_rate": "learning_rate"}
MODEL_CHOICES = ("gan", "vae", "cvae", "beta-vae", "cyclegan", "dbvae")
# MODEL -> (module, config class): imported only when the command runs (TensorFlow).
CONFIG_CLASSES = {
    "gan": ("generative.gan", "GANConfig"),
    "vae": ("generative.vae", "VAEConfig"),
    "cvae": ("generative.vae", "VAEConfig"),
    "beta-vae": ("generative.vae", "VAEConfig"),
    "cyclegan": ("generative.cyclegan", "CycleGANConfig"),
    "dbvae": ("generative.dbvae", "DebiasingVAEConfig"),
}
MODEL_HELP = {
    "gan": "GAN (DCGAN networks, SNGAN discriminator, DiffAugment) on frames of all --envs",
    "vae": "VAE (--architecture mlp|cnn)",
    "cvae": "conditional VAE, conditioned on the game",
    "beta-vae": "beta-VAE (--beta)",
    "cyclegan": "CycleGAN: --task colorize (gray -> color) or games (first env <-> second env)",
    "dbvae": "debiasing VAE on 'is it the first env?' with a rare inverted subgroup",
}


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``generative`` (with its ``train`` command) to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "generative", help="train generative models (GAN, VAE, CycleGAN, DB-VAE) on Atari frames",
        description="Generative models on 64x64 channel-first Atari frames collected by random agents.",
    )
    commands = parser.add_subparsers(dest="generative_command", metavar="COMMAND", required=True)
    train = commands.add_parser(
        "train", help="collect frames, train a model, save it with samples and TensorBoard logs",
        description="Collect frames with random agents, train MODEL with fit(), and write to --out: model.zip "
                    "(the safe archive), config.json, samples.png (+ latent plots for VAEs) and logs/ for TensorBoard.",
        epilog="models: " + "; ".join(f"{name}: {text}" for name, text in MODEL_HELP.items()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("model", choices=MODEL_CHOICES, metavar="MODEL", help=f"one of {', '.join(MODEL_CHOICES)}")
    train.add_argument("--envs", nargs="+", default=["Pong", "Breakout", "SpaceInvaders"],
                       help="Atari games ('Pong' or 'ALE/Pong-v5'); frames are labelled by game")
    train.add_argument("--steps", type=positive_int, default=1000, help="training steps (batches)")
    train.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    train.add_argument("--out", type=Path, default=None, help="output directory (required to train)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seeds Python, NumPy, TensorFlow and the envs")
    train.add_argument("--frames", type=positive_int, default=2048, help="frames to collect in total")
    train.add_argument("--image-size", type=positive_int, default=64, help="side of the square frames")
    train.add_argument("--latent-dim", type=positive_int, default=None,
                       help="latent size (default: 100 for gan, 2 for VAEs, 8 for dbvae)")
    train.add_argument("--architecture", choices=("mlp", "cnn"), default="cnn", help="VAE encoder/decoder type")
    train.add_argument("--beta", type=float, default=4.0, help="KL weight of beta-vae")
    train.add_argument("--filters", type=positive_int, default=32, help="base conv filters of gan / cyclegan")
    train.add_argument("--task", choices=("colorize", "games"), default="colorize", help="cyclegan task")
    gan = train.add_argument_group("gan", "GAN settings; unset ones keep GANConfig's defaults (generative.gan)")
    keep = argparse.SUPPRESS  # absent from args unless given, so GANConfig's default applies
    gan.add_argument("--loss", choices=("bce", "lsgan", "hinge"), default=keep,
                     help="adversarial loss (default: hinge)")
    gan.add_argument("--discriminator-norm", choices=("batch", "spectral", "none"), default=keep,
                     help="normalization in the discriminator (default: spectral)")
    gan.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction, default=keep,
                     help="minibatch standard-deviation channel in the discriminator (default: on)")
    gan.add_argument("--augment", action=argparse.BooleanOptionalAction, default=keep,
                     help="DiffAugment (translation + cutout) on the discriminator's inputs (default: on)")
    gan.add_argument("--learning-rate", type=positive_float, default=keep,
                     help="Adam learning rate of both networks (default: 2e-4)")
    train.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                       help="settings of MODEL's config, applied over the options above, e.g. beta=2 "
                            "filters=[16,32]; --list-config shows them")
    train.add_argument("--list-config", action="store_true", help="print MODEL's config settings with defaults and exit")
    train.add_argument("--cache-dir", type=Path, default=None, help="reuse collected frames from this directory")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``generative`` command; returns the process exit status."""
    if getattr(args, "generative_command", "train") != "train":
        raise ValueError(f"unknown generative command {args.generative_command!r}; expected 'train'")
    config_class = config_class_of(args.model)
    if args.list_config:
        for name, doc, default in config_class.describe():
            print(f"  {name:<28} {default!r:<18} {doc}")
        return 0
    if args.out is None:
        raise ValueError("generative train needs --out DIR, the folder for the model, samples and logs")
    # Parsed before any frame is collected, so an unknown key fails at once.
    overrides = parse_key_values(args.config, config_class.parse_cli_value)
    return _train(args, config_class, overrides)


def config_class_of(model: str) -> Any:
    """The config class of ``MODEL`` (imports its module, and so TensorFlow)."""
    module_name, class_name = CONFIG_CLASSES[model]
    return getattr(importlib.import_module(module_name), class_name)


def _model_config(config_class: Any, overrides: dict[str, Any], from_frames: dict[str, Any], **settings: Any) -> Any:
    """``settings`` (from the options) with ``--config`` over them; ``from_frames`` (the shapes and
    classes of the collected frames) cannot be overridden."""
    fixed = sorted(set(overrides) & set(from_frames))
    if fixed:
        raise ValueError(f"--config {fixed[0]}=... is set from the collected frames (--image-size, --envs); drop it")
    return config_class.build({**settings, **from_frames}, **overrides)


def _fit(model, data, steps: int, out: Path, quiet: bool, steps_per_epoch: int | None = None):
    from generative.common import GenerativeTensorBoard

    steps_per_epoch = min(steps, steps_per_epoch or 100)
    epochs = math.ceil(steps / steps_per_epoch)
    # shuffle=False: the tf.data pipelines shuffle themselves (keras would warn and ignore it).
    return model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0 if quiet else 1, shuffle=False,
                     callbacks=[GenerativeTensorBoard(out / "logs", log_every_steps=max(1, steps_per_epoch // 4))])


def _train(args: argparse.Namespace, config_class: Any, overrides: dict[str, Any]) -> int:
    import numpy as np

    from agents_zoo.core.serialization import atomic_write_text
    from generative import common, data, plots

    started = time.time()
    out = check_output_path(args.out, "--out", folder=True)  # before collecting frames or training
    out.mkdir(parents=True, exist_ok=True)
    common.seed_everything(args.seed)
    frames = data.collect_frames(args.envs, args.frames, image_size=args.image_size, seed=args.seed,
                                 cache_dir=args.cache_dir)
    images = frames.float_images()
    shape = tuple(images.shape[1:])
    batch_size = min(args.batch_size, len(frames))
    extra: dict = {}

    if args.model == "gan":
        from generative.gan import GAN

        chosen = {field: getattr(args, option) for option, field in GAN_OPTIONS.items() if hasattr(args, option)}
        if args.latent_dim is not None:
            chosen["latent_dim"] = args.latent_dim
        config = _model_config(config_class, overrides, {"image_shape": shape}, generator_filters=args.filters,
                               discriminator_filters=args.filters, **chosen)
        model = GAN(config)
        model.compile()
        history = _fit(model, frames.to_dataset(batch_size, seed=args.seed, repeat=True), args.steps, out, args.quiet)
        samples = model.preview_images(64)
    elif args.model in ("vae", "cvae", "beta-vae"):
        from generative.vae import VAE

        from_frames = {"image_shape": shape, "num_classes": frames.num_classes if args.model == "cvae" else 0}
        chosen = {"latent_dim": args.latent_dim} if args.latent_dim is not None else {}
        config = _model_config(config_class, overrides, from_frames, architecture=args.architecture,
                               beta=args.beta if args.model == "beta-vae" else 1.0, **chosen)
        model = VAE(config)
        model.compile()
        history = _fit(model, frames.to_dataset(batch_size, seed=args.seed, repeat=True), args.steps, out, args.quiet)
        preview = images[:: max(1, len(images) // 32)][:32]
        preview_labels = frames.labels[:: max(1, len(images) // 32)][:32]
        reconstructions = np.asarray(model.reconstruct(preview, preview_labels if config.conditional else None))
        samples = np.concatenate([preview, reconstructions])
        label = 0 if config.conditional else None
        plots.plot_latent_traversal(model, out / "latent_traversal.png", label=label)
        if config.latent_dim >= 2:
            plots.plot_latent_space(model, images, frames.labels, out / "latent_space.png", frames.games)
    elif args.model == "cyclegan":
        from generative.cyclegan import CycleGAN, unpaired_dataset

        if args.task == "colorize":
            # Unpaired halves: the color half is never shown next to its own grayscale version.
            half = len(frames) // 2
            order = np.random.default_rng(args.seed).permutation(len(frames))
            source, target = frames.grayscale()[order[:half]], images[order[half:]]
        else:
            if frames.num_classes < 2:
                raise ValueError(f"--task games needs two --envs, got {list(args.envs)}")
            source, target = images[frames.labels == 0], images[frames.labels == 1]
        from_frames = {"source_shape": source.shape[1:], "target_shape": target.shape[1:]}
        config = _model_config(config_class, overrides, from_frames, filters=args.filters,
                               discriminator_filters=args.filters,
                               identity_weight=0.0 if source.shape[1] != target.shape[1] else 5.0)
        model = CycleGAN(config)
        model.compile()
        model.set_preview(source[:16])
        batch_size = min(batch_size, len(source), len(target))
        history = _fit(model, unpaired_dataset(source, target, batch_size, seed=args.seed), args.steps, out, args.quiet)
        samples = model.preview_images(32)
    else:  # dbvae
        from generative.dbvae import DebiasingBatches, DebiasingVAE, make_rare_subgroup_task

        task_images, task_labels, is_rare = make_rare_subgroup_task(images, frames.labels, seed=args.seed)
        chosen = {"latent_dim": args.latent_dim} if args.latent_dim is not None else {}
        config = _model_config(config_class, overrides, {"image_shape": shape}, **chosen)
        model = DebiasingVAE(config)
        model.compile()
        batches = DebiasingBatches(model, task_images, task_labels, batch_size, debias=True, seed=args.seed)
        history = _fit(model, batches, args.steps, out, args.quiet, steps_per_epoch=len(batches))
        probabilities = model.predict_proba(task_images)
        extra["train_accuracy_rare_subgroup"] = float(np.mean(probabilities[is_rare] > 0.5)) if is_rare.any() else None
        samples = task_images[:32]

    model_path = model.save(out / "model.zip")
    common.save_image_grid(samples, out / "samples.png")
    summary = {
        "model": args.model, "envs": list(frames.games), "steps": args.steps, "batch_size": batch_size,
        "seed": args.seed, "frames": len(frames), "config": model.config.to_dict(),
        "final_metrics": {name: float(values[-1]) for name, values in history.history.items()},
        "seconds": round(time.time() - started, 2), **extra,
    }
    atomic_write_text(out / "config.json", json.dumps(summary, indent=2, default=str))
    print(f"saved {model_path} and samples.png in {out} ({summary['seconds']} s)")
    return 0
