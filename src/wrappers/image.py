"""Image observation wrappers: resize, grayscale, channel-first, scale to [0, 1].

Images are ``(H, W)`` or ``(H, W, C)`` uint8 Boxes as ALE and most renderers produce them;
:class:`ChannelFirstObservation` turns them into ``(C, H, W)`` for the networks. OpenCV is
imported when a wrapper is built, never at import time (registration must stay cheap).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from wrappers import _validation


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - opencv is a dependency of the package
        raise gym.error.DependencyNotInstalled(
            "image wrappers need OpenCV: pip install opencv-python-headless"
        ) from error
    return cv2


def _image_shape(value: int | Sequence[int]) -> tuple[int, int]:
    """84 -> (84, 84); (height, width) -> itself; anything else -> ValueError."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"shape must be a positive int or a (height, width) pair, got {value!r}")
    height, width = value
    for name, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"{name} must be a positive int, got {size!r} in shape {value!r}")
    return int(height), int(width)


def _uint8_box(shape: tuple[int, ...]) -> gym.spaces.Box:
    return gym.spaces.Box(low=0, high=255, shape=shape, dtype=np.uint8)


def _require_uint8(wrapper: str, space: gym.spaces.Box) -> None:
    if space.dtype != np.uint8:
        raise TypeError(f"{wrapper} needs uint8 images (0-255), got dtype {space.dtype} in {space!r}")


class ResizeObservation(gym.ObservationWrapper):
    """Resize ``(H, W)`` or ``(H, W, C)`` uint8 images to ``shape`` with area interpolation.

    ``cv2.INTER_AREA`` averages the source pixels under each target pixel, as gymnasium's
    ``AtariPreprocessing`` and SB3's ``WarpFrame`` do (84x84 for DQN, 64x64 for the Atari GAN).

    Example:
        >>> from wrappers.fake_envs import RandomImageEnv
        >>> env = ResizeObservation(RandomImageEnv(shape=(210, 160, 3)), shape=(84, 84))
        >>> env.observation_space.shape
        (84, 84, 3)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype.name
        ((84, 84, 3), 'uint8')
    """

    def __init__(self, env: gym.Env, shape: int | Sequence[int] = 84):
        super().__init__(env)
        space = _validation.image_box("ResizeObservation", env.observation_space)
        _require_uint8("ResizeObservation", space)
        self.shape = _image_shape(shape)
        self._cv2 = _cv2()
        self._channels = space.shape[2:]  # () for (H, W), (C,) for (H, W, C)
        self.observation_space = _uint8_box(self.shape + self._channels)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        height, width = self.shape
        resized = self._cv2.resize(observation, (width, height), interpolation=self._cv2.INTER_AREA)
        # cv2 drops a trailing channel axis of size 1; put it back so the space stays exact.
        return resized.reshape(self.observation_space.shape)


class GrayscaleObservation(gym.ObservationWrapper):
    """Convert ``(H, W, 3)`` RGB images to ``(H, W)`` luminance (``keep_dim=True``: ``(H, W, 1)``).

    Uses ``cv2.cvtColor(RGB2GRAY)`` like SB3's ``WarpFrame``. For ALE games it is cheaper to ask
    the emulator for grayscale screens (``AtariEnv(obs_type="grayscale")``), as the presets do;
    the two differ by at most one gray level.

    Example:
        >>> from wrappers.fake_envs import RandomImageEnv
        >>> env = GrayscaleObservation(RandomImageEnv(shape=(210, 160, 3)))
        >>> env.observation_space.shape
        (210, 160)
    """

    def __init__(self, env: gym.Env, keep_dim: bool = False):
        super().__init__(env)
        space = _validation.image_box("GrayscaleObservation", env.observation_space, ndims=(3,))
        _require_uint8("GrayscaleObservation", space)
        if space.shape[2] != 3:
            raise TypeError(
                f"GrayscaleObservation needs RGB images of shape (H, W, 3), got shape {space.shape}"
            )
        self.keep_dim = bool(keep_dim)
        self._cv2 = _cv2()
        self.observation_space = _uint8_box(space.shape[:2] + ((1,) if self.keep_dim else ()))

    def observation(self, observation: np.ndarray) -> np.ndarray:
        gray = self._cv2.cvtColor(observation, self._cv2.COLOR_RGB2GRAY)
        return gray[:, :, None] if self.keep_dim else gray


class ChannelFirstObservation(gym.ObservationWrapper):
    """Move the channel axis first: ``(H, W, C)`` -> ``(C, H, W)``, ``(H, W)`` -> ``(1, H, W)``.

    Returns a contiguous array (the layout TF's ``channels_first`` convolutions and our replay
    buffers expect); bounds are transposed with the data.

    Example:
        >>> from wrappers.fake_envs import RandomImageEnv
        >>> env = ChannelFirstObservation(RandomImageEnv(shape=(64, 48, 3)))
        >>> env.observation_space.shape
        (3, 64, 48)
        >>> env.reset(seed=0)[0].shape
        (3, 64, 48)
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = _validation.image_box("ChannelFirstObservation", env.observation_space)
        self._add_channel_axis = len(space.shape) == 2
        self.observation_space = gym.spaces.Box(
            low=self._to_channel_first(space.low),
            high=self._to_channel_first(space.high),
            dtype=space.dtype,
        )

    def _to_channel_first(self, image: np.ndarray) -> np.ndarray:
        if self._add_channel_axis:
            return image[None]
        return np.ascontiguousarray(np.moveaxis(image, -1, 0))

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return self._to_channel_first(observation)


class ScaleObservation(gym.ObservationWrapper):
    """Map uint8 pixels 0..255 to float32 in [0, 1] (``x / 255``).

    Apply it last: frame stacks and replay buffers are 4x smaller in uint8.

    Example:
        >>> from wrappers.fake_envs import RandomImageEnv
        >>> env = ScaleObservation(RandomImageEnv(shape=(8, 8)))
        >>> env.observation_space
        Box(0.0, 1.0, (8, 8), float32)
        >>> obs = env.reset(seed=0)[0]
        >>> obs.dtype.name, bool(0.0 <= obs.min() <= obs.max() <= 1.0)
        ('float32', True)
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"ScaleObservation needs a Box of uint8 pixels, got {space!r}")
        _require_uint8("ScaleObservation", space)
        self.observation_space = gym.spaces.Box(low=0.0, high=1.0, shape=space.shape, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        # Multiplying by the float32 reciprocal is one pass and never exceeds 1.0 (255 * (1/255)
        # rounds to 1.0 in float32).
        return np.multiply(observation, np.float32(1.0 / 255.0), dtype=np.float32)
