"""Plumbing shared by every generative model: the channel-first boundary, safe save/load, image
grids as PNG, and a TensorBoard callback for losses and sample grids. Seeding is
:func:`agents_zoo.core.seeding.seed_everything`, also importable from here.

Models take images channel-first ``(N, C, H, W)`` in ``[0, 1]`` (the layout of the Atari
"gan" preset), but TensorFlow's CPU convolutions only implement NHWC, so every model
validates and transposes once at its boundary (:func:`to_channels_last`) and works NHWC inside.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from agents_zoo.core import saved_variables
from agents_zoo.core.config import Config
from agents_zoo.core.load_limits import array_elements, parameter_budget
from agents_zoo.core.restore_checks import check_finite_arrays
from agents_zoo.core.seeding import seed_everything  # noqa: F401 - generative.seed_everything
from agents_zoo.core.serialization import ArchiveError, atomic_save, load_archive, save_archive

ARCHIVE_KIND_PREFIX = "generative/"


# ----------------------------------------------------------------------------- shapes
def check_image_shape(shape: Sequence[int], expected_chw: Sequence[int], what: str = "images") -> None:
    """Raise a ValueError naming ``shape`` and the expected ``(N, C, H, W)`` when they differ.

    The static shape is checked, so inside ``fit()`` the error comes at graph tracing time,
    before any step runs. A channel-last batch gets a hint instead of a cryptic conv error.
    """
    shape = tuple(None if d is None else int(d) for d in shape)
    expected_chw = tuple(int(d) for d in expected_chw)
    expected_text = f"(batch, {', '.join(map(str, expected_chw))}) channel-first"
    if len(shape) != 4:
        raise ValueError(f"{what} must be a 4-D batch {expected_text}, got shape {shape}")
    if shape[1:] == expected_chw:
        return
    channels, height, width = expected_chw
    if shape[1:] == (height, width, channels):
        raise ValueError(
            f"{what} have shape {shape}, which looks channel-last (N, H, W, C); this model expects "
            f"{expected_text}: transpose with np.transpose(images, (0, 3, 1, 2))"
        )
    raise ValueError(f"{what} have shape {shape}, expected {expected_text}")


def to_channels_last(images: tf.Tensor) -> tf.Tensor:
    """(N, C, H, W) -> (N, H, W, C): TF CPU convolutions need NHWC."""
    return tf.transpose(images, (0, 2, 3, 1))


def to_channels_first(images: tf.Tensor) -> tf.Tensor:
    """(N, H, W, C) -> (N, C, H, W), the layout the models hand back."""
    return tf.transpose(images, (0, 3, 1, 2))


def unpack_images(data: Any) -> tuple[tf.Tensor, tf.Tensor | None]:
    """``fit()`` hands ``images`` or ``(images, labels)``; return both, labels may be None."""
    if isinstance(data, (tuple, list)):
        images = data[0]
        labels = data[1] if len(data) > 1 else None
        return images, labels
    return data, None


def num_downsamplings(size: int, smallest: int, what: str) -> int:
    """How many stride-2 layers take ``size`` down to ``smallest``; size must be smallest * 2**k."""
    steps = math.log2(size / smallest) if size >= smallest else -1
    if steps < 1 or steps != int(steps):
        raise ValueError(f"{what} must be {smallest} times a power of two (>= {2 * smallest}), got {size}")
    return int(steps)


# ----------------------------------------------------------------------------- save / load
WEIGHTS = "weights"  # saved as weights/<name> (core.saved_variables); earlier: weights/<index>/<keras path>


def save_model_archive(model: keras.Model, path: str | Path, model_name: str, config: Config) -> Path:
    """Save a built model's weights with the project's pickle-free archive format, by name."""
    if not model.built:
        raise ValueError(f"{model_name} has no weights yet: call it on a batch or fit it before save()")
    arrays = saved_variables.variables_to_arrays(WEIGHTS, model, model.weights)
    return save_archive(
        path,
        kind=ARCHIVE_KIND_PREFIX + model_name,
        config=config.to_dict(),
        arrays=arrays,
        metadata={"num_weights": len(arrays), saved_variables.LAYOUT_KEY: saved_variables.NAMES},
    )


def _checked_weights(model: keras.Model, arrays: dict[str, np.ndarray],
                     model_name: str) -> list[tuple[Any, np.ndarray]]:
    """(weight, value) pairs, all checked before any is assigned.

    Files saved before weights were named hold ``weights/0000/<keras path>`` (the path was
    written only to be read: Keras' auto-named layers get other paths in another process); they
    are matched by position, in the sorted order of those names, which is ``model.weights``' order.
    """
    if not saved_variables.is_positional(WEIGHTS, arrays):
        named = saved_variables.named_variables(model, model.weights)
        return saved_variables.checked_by_name({WEIGHTS: named}, arrays)
    saved = [(name, arrays[name]) for name in sorted(arrays)]
    if len(saved) != len(model.weights):
        raise ValueError(f"the file holds {len(saved)} weight arrays, but a {model_name} built from its config "
                         f"has {len(model.weights)}")
    return [(variable, saved_variables.converted_value(f"weight {variable.path}", variable, value,
                                                       f"weight {variable.path} (saved as {name})"))
            for variable, (name, value) in zip(model.weights, saved)]


def load_model_archive(path: str | Path, model_name: str, config_class: type[Config],
                       build: Callable[[Any], keras.Model]) -> keras.Model:
    """Rebuild the model from the saved config with ``build(config)``, then assign the weights.

    Anything wrong with the file is an ``ArchiveError`` naming it: a config ``config_class.from_saved``
    refuses (unknown keys, wrong types, non-finite or huge numbers, bad values), one that cannot
    be built, weights missing, unexpected or of another shape, and weights holding NaN or inf
    (checked before any is assigned).
    """
    archive = load_archive(path, expected_kind=ARCHIVE_KIND_PREFIX + model_name)
    source = str(path)
    try:
        config = config_class.from_saved(archive.config)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ArchiveError(f"{source!r}: invalid saved {config_class.__name__}: {exc}") from None
    check_finite_arrays(archive.arrays, source, skip_prefixes=())
    # Every weight is in the file, so the config may not declare more (core.load_limits).
    try:
        with parameter_budget(array_elements(archive.arrays), source):
            model = build(config)
    except ArchiveError:
        raise
    except MemoryError:
        raise ArchiveError(f"{source!r}: its config asks for more memory than this machine has") from None
    except (TypeError, ValueError, ArithmeticError, tf.errors.OpError) as exc:
        raise ArchiveError(f"{source!r}: cannot build a {model_name} from its saved config: {exc}") from None
    try:
        weights = _checked_weights(model, archive.arrays, model_name)
    except ValueError as exc:
        raise ArchiveError(f"{source!r}: {exc}") from None
    for variable, value in weights:
        variable.assign(value)
    return model


# ----------------------------------------------------------------------------- image grids
def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile channel-first images ``(N, C, H, W)`` in [0, 1] into one ``(H', W', 3)`` picture."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4:
        raise ValueError(f"image_grid takes (N, C, H, W) images, got shape {images.shape}")
    if images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    if images.shape[1] != 3:
        raise ValueError(f"image_grid takes 1 or 3 channels first, got shape {images.shape}")
    count, _, height, width = images.shape
    columns = columns or int(math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    grid = np.ones((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return grid


class ArchivedModel:
    """``save``/``load`` through the pickle-free archive for a Keras model with a :class:`Config`.

    Mixed in before ``keras.Model`` (so it replaces Keras's own ``save``); a subclass names its
    ``model_name`` (the archive kind ``generative/<model_name>``) and its ``config_class``.
    """

    model_name: str
    config_class: type[Config]

    def __init__(self, config: Config | None = None, *, loss_names: Sequence[str] = (), **kwargs: Any):
        super().__init__(name=kwargs.pop("name", self.model_name), **kwargs)
        self.config = config or self.config_class()
        # The running means ``fit`` reports (``report_losses`` feeds them), in ``metrics``' order.
        self.trackers = {name: keras.metrics.Mean(name=name) for name in loss_names}

    @property
    def metrics(self) -> list:
        return list(self.trackers.values())

    def save(self, path: str | Path) -> Path:
        """Save config + weights (kind ``generative/<model_name>``), no pickle."""
        return save_model_archive(self, path, self.model_name, self.config)

    @classmethod
    def load(cls, path: str | Path):
        return load_model_archive(path, cls.model_name, cls.config_class, cls)

    def report_losses(self, losses: dict) -> dict:
        """Feed each loss into its ``keras.metrics.Mean`` tracker; return the running means for ``fit``."""
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def save_image_grid(images: np.ndarray, path: str | Path, columns: int | None = None) -> Path:
    """Write a PNG grid atomically (matplotlib's Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    path = Path(path)
    atomic_save(path, lambda tmp: plt.imsave(tmp, grid, format="png"))
    return path


# ----------------------------------------------------------------------------- callbacks
class GenerativeTensorBoard(keras.callbacks.Callback):
    """Log every scalar the train step returns and a grid of ``model.preview_images()``.

    Scalars go under ``train/<name>`` every ``log_every_steps`` batches and at each epoch end;
    the image grid under ``samples`` at each epoch end.
    """

    def __init__(self, log_dir: str | Path, log_every_steps: int = 50, num_preview: int = 16):
        super().__init__()
        self.log_dir = str(log_dir)
        self.log_every_steps = int(log_every_steps)
        self.num_preview = int(num_preview)
        self._writer = None
        self._step = 0

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def _write_scalars(self, logs, prefix):
        with self._writer.as_default(step=self._step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(f"{prefix}/{name}", float(value))

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.log_every_steps and self._step % self.log_every_steps == 0:
            self._write_scalars(logs, "train")

    def on_epoch_end(self, epoch, logs=None):
        self._write_scalars(logs, "epoch")
        preview = getattr(self.model, "preview_images", None)
        images = preview(self.num_preview) if preview is not None else None
        if images is not None:  # a CycleGAN has nothing to show until set_preview()
            grid = image_grid(images)
            with self._writer.as_default(step=self._step):
                tf.summary.image("samples", grid[None], max_outputs=1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class ThroughputMeter(keras.callbacks.Callback):
    """Time each training batch; ``images_per_second`` skips the first (graph tracing) batches."""

    def __init__(self, batch_size: int, warmup_batches: int = 2):
        super().__init__()
        self.batch_size = int(batch_size)
        self.warmup_batches = int(warmup_batches)
        self.batch_seconds: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batch_seconds.append(time.perf_counter() - self._start)

    @property
    def images_per_second(self) -> float:
        timed = self.batch_seconds[self.warmup_batches :] or self.batch_seconds
        return self.batch_size / float(np.median(timed)) if timed else float("nan")
