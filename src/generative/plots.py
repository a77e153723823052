"""Latent-space pictures of a VAE as PNG files (matplotlib Agg backend, no display needed).

* :func:`plot_latent_space`: posterior means of labelled images, a scatter colored by label
  (the first two latent dimensions).
* :func:`plot_latent_traversal`: one row per latent dimension, decoding ``z`` with that
  dimension swept over ``values`` and the others at 0 (for a 2-D latent, the classic decoded
  grid is ``plot_latent_traversal(model, path, grid_2d=True)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from agents_zoo.core.serialization import atomic_save
from generative import common


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latent_space(model, images: np.ndarray, labels: np.ndarray, path: str | Path,
                      label_names: Sequence[str] | None = None) -> Path:
    """Scatter the posterior means of ``images`` in the first two latent dimensions, by label."""
    labels = np.asarray(labels).reshape(-1)
    if model.config.latent_dim < 2:
        raise ValueError(f"a latent scatter needs latent_dim >= 2, got {model.config.latent_dim}")
    condition = labels if model.config.conditional else None
    mean, _ = model.encode(images, condition)
    mean = np.asarray(mean)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 5))
    for label in np.unique(labels):
        chosen = labels == label
        name = label_names[label] if label_names is not None else str(label)
        axes.scatter(mean[chosen, 0], mean[chosen, 1], s=6, label=name)
    axes.set_xlabel("z[0]")
    axes.set_ylabel("z[1]")
    axes.legend(markerscale=3, fontsize=8)
    axes.set_title("posterior means by label")
    figure.tight_layout()
    path = Path(path)
    atomic_save(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)
    return path


def plot_latent_traversal(model, path: str | Path, values: Sequence[float] = tuple(np.linspace(-2.5, 2.5, 8)),
                          dimensions: Sequence[int] | None = None, label: int | None = None,
                          grid_2d: bool = False) -> Path:
    """Decode sweeps through latent space into one PNG grid.

    ``grid_2d``: decode the grid ``values x values`` over dimensions 0 and 1; otherwise one row
    per dimension in ``dimensions`` (default: all), sweeping it over ``values`` from z = 0.
    ``label`` picks the class of a conditional VAE (required there).
    """
    latent_dim = model.config.latent_dim
    values = np.asarray(values, np.float32)
    if grid_2d:
        if latent_dim < 2:
            raise ValueError(f"grid_2d needs latent_dim >= 2, got {latent_dim}")
        latent = np.zeros((len(values) ** 2, latent_dim), np.float32)
        # Rows go from high z[1] (top) to low, like a y axis.
        latent[:, 0] = np.tile(values, len(values))
        latent[:, 1] = np.repeat(values[::-1], len(values))
    else:
        dimensions = list(range(latent_dim)) if dimensions is None else list(dimensions)
        bad = [d for d in dimensions if not 0 <= d < latent_dim]
        if bad:
            raise ValueError(f"dimensions {bad} out of range for latent_dim={latent_dim}")
        latent = np.zeros((len(dimensions) * len(values), latent_dim), np.float32)
        for row, dimension in enumerate(dimensions):
            latent[row * len(values) : (row + 1) * len(values), dimension] = values
    labels = None
    if model.config.conditional:
        if label is None:
            raise ValueError(f"a conditional VAE needs label= one of 0..{model.config.num_classes - 1}, got None")
        labels = np.full(len(latent), label)
    images = np.asarray(model.decode(latent, labels))
    return common.save_image_grid(images, path, columns=len(values))
