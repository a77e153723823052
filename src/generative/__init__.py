"""Generative models on Atari frames: GAN, VAE / CVAE / beta-VAE, CycleGAN, DB-VAE.

Every model is a ``keras.Model`` trained with ``compile()`` + ``fit()``, takes channel-first
images ``(N, C, H, W)`` in [0, 1], and saves with the project's pickle-free archive format
(``model.save(path)`` / ``Model.load(path)``). Names are imported lazily so that
``import generative`` (e.g. by the CLI's ``--help``) does not load TensorFlow.

Example:
    >>> import generative
    >>> sorted(generative.MODELS)
    ['autoencoder_translator', 'cyclegan', 'dbvae', 'gan', 'vae']
"""

from __future__ import annotations

import importlib

# public name -> defining submodule
_EXPORTS = {
    "GAN": "gan", "GANConfig": "gan",
    "VAE": "vae", "VAEConfig": "vae", "kl_divergence": "vae",
    "CycleGAN": "cyclegan", "CycleGANConfig": "cyclegan", "AutoencoderTranslator": "cyclegan",
    "cycle_consistency_loss": "cyclegan", "unpaired_dataset": "cyclegan", "peak_signal_to_noise_ratio": "cyclegan",
    "DebiasingVAE": "dbvae", "DebiasingVAEConfig": "dbvae", "DebiasingBatches": "dbvae",
    "latent_sampling_probabilities": "dbvae", "make_rare_subgroup_task": "dbvae", "transform_frames": "dbvae",
    "discriminator_loss": "adversarial", "generator_loss": "adversarial", "build_mlp_discriminator": "adversarial",
    "FrameSet": "data", "collect_frames": "data", "load_keras_dataset": "data", "make_image_dataset": "data",
    "GenerativeTensorBoard": "common", "save_image_grid": "common", "seed_everything": "common",
    "plot_latent_space": "plots", "plot_latent_traversal": "plots",
}
# model name (archive kind "generative/<name>") -> class name
MODELS = {"gan": "GAN", "vae": "VAE", "cyclegan": "CycleGAN", "dbvae": "DebiasingVAE",
          "autoencoder_translator": "AutoencoderTranslator"}

__all__ = sorted(_EXPORTS) + ["MODELS", "load_model"]


def __getattr__(name: str):
    if name in _EXPORTS:
        from agents_zoo.core.quiet_startup import prefer_onednn_kernels

        prefer_onednn_kernels()  # the model modules load TensorFlow, which reads the setting once
        return getattr(importlib.import_module(f"generative.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'generative' has no attribute {name!r}")


def load_model(path):
    """Load any generative model archive, dispatching on the kind stored in it."""
    from agents_zoo.core.serialization import load_archive

    kind = load_archive(path, expected_kind="generative").kind
    model_name = kind.split("/", 1)[1]
    if model_name not in MODELS:
        raise ValueError(f"{str(path)!r} holds {kind!r}; loadable kinds are {['generative/' + m for m in MODELS]}")
    return __getattr__(MODELS[model_name]).load(path)
