"""Training images for the generative models: Atari frames from random agents.

Several games are played at once by random agents (the "Atari GAN" setup of Deep RL Hands-On);
the screens come from the wrappers package's GAN-frames preset (``make_atari_env(game,
preset="gan")``: 210x160 -> 64x64 RGB, channel-first), every ``keep_every``-th agent step is
kept, and blank or near-black screens (mean below ``min_mean``; some games flicker) are skipped.
The game index is the label, for conditioning. Frames are stored as uint8 and handed out as
float32 in [0, 1].

A collection can be cached on disk as an ``.npz`` (written atomically, read with
``allow_pickle=False``) keyed by everything that shapes it, so tests and benchmarks collect once.

Example:
    >>> frames = collect_frames(["Pong", "Breakout"], num_frames=8, seed=0)  # doctest: +SKIP
    >>> frames.images.shape, frames.games                                      # doctest: +SKIP
    ((8, 3, 64, 64), ('Pong', 'Breakout'))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from agents_zoo.core.serialization import atomic_open

CACHE_FORMAT_VERSION = 2
# ITU-R BT.601 luma, what cv2.cvtColor(..., COLOR_RGB2GRAY) uses.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class FrameSet:
    """Channel-first uint8 images ``(N, C, H, W)``, integer labels ``(N,)`` and the label names."""

    images: np.ndarray
    labels: np.ndarray
    games: tuple[str, ...]

    def __post_init__(self):
        if self.images.ndim != 4:
            raise ValueError(f"FrameSet images must be (N, C, H, W), got shape {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.games)

    def float_images(self) -> np.ndarray:
        """Images as float32 in [0, 1], channel-first."""
        return self.images.astype(np.float32) / 255.0

    def grayscale(self) -> np.ndarray:
        """Float32 luma images ``(N, 1, H, W)`` in [0, 1] (the colorization input)."""
        return np.einsum("nchw,c->nhw", self.float_images(), LUMA_WEIGHTS)[:, None]

    def one_hot_labels(self) -> np.ndarray:
        return np.eye(self.num_classes, dtype=np.float32)[self.labels]

    def subset(self, indices: np.ndarray) -> "FrameSet":
        return FrameSet(self.images[indices], self.labels[indices], self.games)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple["FrameSet", "FrameSet"]:
        """Shuffle once with ``seed`` and hold out ``test_fraction`` of the frames."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        num_test = max(1, int(round(test_fraction * len(self))))
        return self.subset(order[num_test:]), self.subset(order[:num_test])

    def to_dataset(self, batch_size: int, shuffle: bool = True, seed: int = 0, repeat: bool = False,
                   with_labels: bool = True, one_hot: bool = True):
        """A ``tf.data`` pipeline of float [0, 1] channel-first batches (and labels)."""
        return make_image_dataset(
            self.float_images(),
            (self.one_hot_labels() if one_hot else self.labels) if with_labels else None,
            batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=repeat,
        )


def make_image_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 32,
                       shuffle: bool = True, seed: int = 0, repeat: bool = False):
    """Batches of ``images`` (and ``labels``) as a ``tf.data.Dataset``; full batches only.

    ``drop_remainder`` keeps every batch the same static shape, so ``fit()`` traces the train
    step once instead of again for a short last batch.
    """
    import tensorflow as tf

    if len(images) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} images for one full batch, got {len(images)}")
    tensors = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- environments
def _open_frame_env(game: str, image_size: int):
    """Return ``(env, to_uint8_chw)`` for a game name or env id.

    Names the wrappers package knows ("Pong", "PongNoFrameskip-v4", "agents_zoo/Pong-gan-v0")
    use its GAN-frames preset (frame skip 4, RGB, float (3, size, size) in [0, 1]); other
    gymnasium ids (e.g. "ALE/Pong-v5") are made directly and resized here with INTER_AREA.
    """
    from wrappers import atari_presets

    try:
        atari_presets.resolve_game(game)
    except ValueError:
        pass
    else:
        env = atari_presets.make_atari_env(game, preset="gan", screen_size=image_size)
        return env, lambda observation: np.round(np.asarray(observation) * 255.0).astype(np.uint8)
    import gymnasium as gym

    try:
        import ale_py  # noqa: F401 - registers the ALE/... ids with gymnasium
    except ImportError as exc:  # pragma: no cover - ale-py is a dependency
        raise ImportError("Atari frames need ale-py: pip install 'ale-py>=0.9'") from exc
    try:
        env = gym.make(game)
    except gym.error.Error as exc:
        raise ValueError(f"cannot make Atari env {game!r} ({exc}); expected a game like 'Pong' or an id like "
                         f"'ALE/Pong-v5'") from None
    if env.observation_space.shape is None or len(env.observation_space.shape) != 3:
        env.close()
        raise ValueError(f"env {game!r} has observations of shape {env.observation_space.shape}, expected RGB (H, W, 3)")
    return env, lambda observation: resize_frame(observation, image_size)


def resize_frame(frame: np.ndarray, image_size: int) -> np.ndarray:
    """An RGB ``(210, 160, 3)`` screen -> uint8 ``(3, image_size, image_size)``."""
    import cv2

    # INTER_AREA averages the source pixels, so thin objects (balls, bullets) fade instead of vanish.
    resized = cv2.resize(frame, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


def collect_frames(
    games: Sequence[str],
    num_frames: int,
    image_size: int = 64,
    seed: int = 0,
    keep_every: int = 2,
    min_mean: float = 0.01,
    cache_dir: str | Path | None = None,
) -> FrameSet:
    """Play ``games`` at once with random agents and keep ``num_frames`` screens, balanced by game.

    Args:
        games: names ("Pong", "PongNoFrameskip-v4") or gymnasium ids ("ALE/Pong-v5"); a frame's
            label is its game's index.
        num_frames: frames in total, split evenly over the games.
        image_size: side of the square output frames.
        seed: seeds each env's reset and each random agent's action space.
        keep_every: keep one screen in this many steps, so consecutive kept frames differ.
        min_mean: skip screens whose mean pixel value in [0, 1] is below this (blank screens).
        cache_dir: if given, load from / save to an ``.npz`` there.
    """
    env_ids = tuple(str(game).strip() for game in games)
    if not env_ids or not all(env_ids):
        raise ValueError(f"collect_frames needs non-empty game names, got {list(games)}")
    if len(set(env_ids)) != len(env_ids):
        raise ValueError(f"games must be distinct, got {list(env_ids)}")
    if num_frames < len(env_ids):
        raise ValueError(f"num_frames={num_frames} must be at least the number of games ({len(env_ids)})")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    if keep_every < 1:
        raise ValueError(f"keep_every must be >= 1, got {keep_every}")
    settings = dict(games=env_ids, num_frames=int(num_frames), image_size=int(image_size), seed=int(seed),
                    keep_every=int(keep_every), min_mean=float(min_mean), version=CACHE_FORMAT_VERSION)
    cache_path = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        cache_path = Path(cache_dir) / f"atari_frames_{key}.npz"
        if cache_path.is_file():
            return load_frame_cache(cache_path)

    per_game = [num_frames // len(env_ids) + (i < num_frames % len(env_ids)) for i in range(len(env_ids))]
    envs, converters = zip(*(_open_frame_env(env_id, image_size) for env_id in env_ids))
    kept: list[list[np.ndarray]] = [[] for _ in env_ids]
    try:
        for index, env in enumerate(envs):
            env.reset(seed=seed + index)
            env.action_space.seed(seed + index)
        step = 0
        # Round-robin over the games, like several random agents playing side by side.
        while any(len(kept[i]) < per_game[i] for i in range(len(envs))):
            step += 1
            for index, env in enumerate(envs):
                if len(kept[index]) >= per_game[index]:
                    continue
                frame, _, terminated, truncated, _ = env.step(env.action_space.sample())
                if terminated or truncated:
                    frame, _ = env.reset()
                if step % keep_every:
                    continue
                frame = converters[index](frame)
                if frame.mean() >= min_mean * 255.0:
                    kept[index].append(frame)
    finally:
        for env in envs:
            env.close()
    images = np.stack([frame for frames in kept for frame in frames]).astype(np.uint8)
    labels = np.concatenate([np.full(len(frames), i, np.int64) for i, frames in enumerate(kept)])
    frame_set = FrameSet(images, labels, env_ids)
    if cache_path is not None:
        save_frame_cache(frame_set, cache_path)
    return frame_set


def save_frame_cache(frame_set: FrameSet, path: str | Path) -> Path:
    """Write the frames as a compressed ``.npz`` atomically (an interrupted write leaves no file)."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, images=frame_set.images, labels=frame_set.labels,
                            games=np.array(frame_set.games, dtype=np.str_))
    return path


def load_frame_cache(path: str | Path) -> FrameSet:
    """Read a cache written by :func:`save_frame_cache`; never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"images", "labels", "games"} - set(data.files)
        if missing:
            raise ValueError(f"{str(path)!r} is not a frame cache: missing arrays {sorted(missing)}")
        return FrameSet(data["images"], data["labels"].astype(np.int64), tuple(str(g) for g in data["games"]))


# ----------------------------------------------------------------------------- keras datasets
def load_keras_dataset(name: str, split: str = "train") -> FrameSet:
    """MNIST or CIFAR-10 from ``keras.datasets`` as a channel-first uint8 :class:`FrameSet`.

    Downloads on first use (needs internet); imported lazily so nothing else depends on it.
    """
    import keras

    loaders = {"mnist": keras.datasets.mnist, "cifar10": keras.datasets.cifar10}
    if name not in loaders:
        raise ValueError(f"dataset must be one of {sorted(loaders)}, got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    (train_x, train_y), (test_x, test_y) = loaders[name].load_data()
    images, labels = (train_x, train_y) if split == "train" else (test_x, test_y)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    class_names = tuple(str(i) for i in range(10))
    return FrameSet(np.ascontiguousarray(images, dtype=np.uint8), labels.reshape(-1).astype(np.int64), class_names)
